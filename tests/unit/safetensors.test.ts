import { describe, expect, test } from 'vitest';
import {
  bf16BitsToF32,
  encodeFloats,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  formatCount,
  headerByteLength,
  parseHeader,
  parseSafetensors,
  toFloat32,
  writeSafetensors,
} from '../../src/core/safetensors';

/** A file whose header is the given JSON text (padded to 8 bytes) followed by `dataBytes` bytes. */
function rawFile(headerText: string, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  return out;
}

const file = (header: object, dataBytes: number): Uint8Array => rawFile(JSON.stringify(header), dataBytes);
const parse = (bytes: Uint8Array, size = bytes.length) => parseHeader(bytes, 'model.safetensors', size);

describe('parseHeader', () => {
  test('reads dtype, shape, absolute offsets and metadata', () => {
    const bytes = writeSafetensors(
      [
        { name: 'a', dtype: 'F32', shape: [2, 3], data: encodeFloats([1, 2, 3, 4, 5, 6], 'F32') },
        { name: 'b', dtype: 'F16', shape: [4], data: encodeFloats([1, 2, 3, 4], 'F16') },
        { name: 'empty', dtype: 'BF16', shape: [0, 5], data: new Uint8Array(0) },
      ],
      { format: 'pt' },
    );
    const header = parse(bytes);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.dataStart % 8).toBe(0);
    const a = header.tensors.get('a')!;
    expect(a).toMatchObject({ dtype: 'F32', shape: [2, 3], elements: 6, begin: header.dataStart, end: header.dataStart + 24 });
    expect(header.tensors.get('b')).toMatchObject({ begin: header.dataStart + 24, end: header.dataStart + 32 });
    expect(header.tensors.get('empty')!.elements).toBe(0);
    expect(header.warnings).toEqual([]);
    const parsed = parseSafetensors(bytes, 'model.safetensors');
    expect(Array.from(parsed.tensor('a'))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(parsed.tensor('b'))).toEqual([1, 2, 3, 4]);
  });

  test('needs only the header bytes, not the data', () => {
    const bytes = file({ w: { dtype: 'F32', shape: [1000], data_offsets: [0, 4000] } }, 4000);
    const needed = headerByteLength(bytes.subarray(0, 8), 'model.safetensors', bytes.length);
    expect(needed).toBe(bytes.length - 4000);
    const header = parseHeader(bytes.slice(0, needed), 'model.safetensors', bytes.length);
    expect(header.tensors.get('w')!.end).toBe(bytes.length);
  });

  test('file shorter than 8 bytes', () => {
    expect(() => parse(new Uint8Array(5))).toThrow(/model\.safetensors is 5 bytes long, shorter than the 8-byte header length.*download it again/);
  });

  test('header length past the end of the file: cut-off download', () => {
    const bytes = file({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4);
    expect(() => parse(bytes.subarray(0, 20), 20)).toThrow(/model\.safetensors ends at byte 20 of at least \d+.*cut off.*download it again/);
  });

  test('absurd header length (not a safetensors file)', () => {
    const bytes = new Uint8Array(64);
    new DataView(bytes.buffer).setUint32(0, 0x7fffffff, true);
    expect(() => parse(bytes)).toThrow(/2,147,483,647-byte header, more than the 104,857,600/);
    const html = new TextEncoder().encode('<!DOCTYPE html><html>...</html>');
    expect(() => parse(html)).toThrow(/not a safetensors file/);
    const huge = new Uint8Array(64);
    new DataView(huge.buffer).setUint32(4, 1, true); // high word set: ≥ 2^32
    expect(() => parse(huge)).toThrow(/4,294,967,296-byte header/);
  });

  test('invalid JSON and invalid UTF-8', () => {
    expect(() => parse(rawFile('{"w": {"dtype": "F32",', 0))).toThrow(/model\.safetensors: the header is not valid JSON/);
    const bad = rawFile('{"w":1}', 0);
    bad[9] = 0xff;
    expect(() => parse(bad)).toThrow(/not valid UTF-8/);
    expect(() => parse(rawFile('[1, 2]', 0))).toThrow(/not an object of tensors/);
  });

  test('unknown dtype names the tensor', () => {
    const bytes = file({ 'model.embed_tokens.weight': { dtype: 'Q4_K', shape: [1], data_offsets: [0, 1] } }, 1);
    expect(() => parse(bytes)).toThrow(/model\.safetensors, tensor "model\.embed_tokens\.weight": unknown dtype "Q4_K"/);
  });

  test('shape not a list of non-negative safe integers', () => {
    for (const shape of [[-1], [1.5], ['3'], 7, [2 ** 53]]) {
      const bytes = file({ w: { dtype: 'F32', shape, data_offsets: [0, 4] } }, 4);
      expect(() => parse(bytes)).toThrow(/tensor "w": shape .* is not a list of non-negative integers|claims more bytes/);
    }
  });

  test('byte size ≠ product(shape) · dtype size', () => {
    const bytes = file({ w: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 24] } }, 24);
    expect(() => parse(bytes)).toThrow(/tensor "w": data_offsets \[0, 24\] span 24 bytes, but F16 \[2,3\] needs 12/);
  });

  test('a header claiming 10^12 elements fails without allocating', () => {
    const bytes = file({ w: { dtype: 'F32', shape: [1_000_000, 1_000_000], data_offsets: [0, 4_000_000_000_000] } }, 16);
    expect(() => parse(bytes)).toThrow(/model\.safetensors ends at byte \d+ of 4,000,000,000,\d+ \(tensor "w" lies past the end\).*cut off/);
    const overflow = file({ w: { dtype: 'F64', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8);
    expect(() => parse(overflow)).toThrow(/claims more bytes than any file can hold/);
  });

  test('offsets out of range or malformed', () => {
    expect(() => parse(file({ w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 8))).toThrow(/ends at byte \d+ of \d+ \(tensor "w" lies past the end\)/);
    expect(() => parse(file({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 8))).toThrow(/data_offsets \[8,4\] is not a pair/);
    expect(() => parse(file({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 8))).toThrow(/data_offsets \[0\] is not a pair/);
    expect(() => parse(file({ w: { dtype: 'F32', shape: [1] } }, 8))).toThrow(/data_offsets undefined is not a pair/);
  });

  test('overlapping tensors', () => {
    const bytes = file(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      },
      12,
    );
    expect(() => parse(bytes)).toThrow(/tensors "a" .* and "b" .* overlap/);
  });

  test('gaps are tolerated and reported', () => {
    const bytes = file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 12);
    const header = parse(bytes);
    expect(header.tensors.get('a')!.begin).toBe(header.dataStart + 4);
    expect(header.warnings).toEqual(['model.safetensors: 8 bytes of the data buffer belong to no tensor.']);
  });

  test('odd metadata is ignored with a warning', () => {
    const header = parse(file({ __metadata__: { format: 'pt', n: 3 } }, 0));
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.warnings[0]).toMatch(/__metadata__\.n is not a string/);
  });

  test('formatCount', () => {
    expect(formatCount(6291456)).toBe('6,291,456');
    expect(formatCount(812)).toBe('812');
    expect(formatCount(0)).toBe('0');
  });
});

describe('conversions to f32', () => {
  const u16le = (values: number[]): Uint8Array => {
    const out = new Uint8Array(values.length * 2);
    values.forEach((v, i) => new DataView(out.buffer).setUint16(2 * i, v, true));
    return out;
  };

  test('F16 known bit patterns, subnormals, inf, nan', () => {
    const cases: [number, number][] = [
      [0x0000, 0],
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0400, 2 ** -14], // smallest normal
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x8001, -(2 ** -24)],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    const out = toFloat32(u16le(cases.map((c) => c[0])), 'F16');
    cases.forEach(([, value], i) => expect(out[i]).toBe(value));
    expect(Object.is(toFloat32(u16le([0x8000]), 'F16')[0], -0)).toBe(true);
    const nan = toFloat32(u16le([0x7e00, 0x7c01, 0xfe00]), 'F16');
    expect(Array.from(nan).every(Number.isNaN)).toBe(true);
    for (let h = 0; h < 65536; h += 7) {
      const v = f16BitsToF32(h);
      if (!Number.isNaN(v)) expect(toFloat32(u16le([h]), 'F16')[0]).toBe(v);
    }
  });

  test('F16 table matches the reference formula for all 65,536 patterns', () => {
    const all = u16le(Array.from({ length: 65536 }, (_, h) => h));
    const out = toFloat32(all, 'F16');
    for (let h = 0; h < 65536; h++) {
      const v = f16BitsToF32(h);
      if (Number.isNaN(v)) expect(out[h]).toBeNaN();
      else expect(out[h]).toBe(v);
    }
  });

  test('BF16 known bit patterns', () => {
    const cases: [number, number][] = [
      [0x3f80, 1],
      [0xc000, -2],
      [0x3eab, 0.333984375],
      [0x7f7f, 3.3895313892515355e38],
      [0x0001, 9.183549615799121e-41], // subnormal
      [0x7f80, Infinity],
      [0xff80, -Infinity],
    ];
    const out = toFloat32(u16le(cases.map((c) => c[0])), 'BF16');
    cases.forEach(([bits, value], i) => {
      expect(out[i]).toBe(value);
      expect(bf16BitsToF32(bits)).toBe(value);
    });
    expect(toFloat32(u16le([0x7fc0]), 'BF16')[0]).toBeNaN();
  });

  test('F32 and F64, aligned and unaligned', () => {
    const values = [1.5, -0, 3.4028234663852886e38, 2 ** -149, Infinity];
    const f32 = encodeFloats(values, 'F32');
    expect(Array.from(toFloat32(f32, 'F32'))).toEqual(values);
    const shifted = new Uint8Array(f32.length + 1);
    shifted.set(f32, 1);
    expect(Array.from(toFloat32(shifted.subarray(1), 'F32'))).toEqual(values);
    const f64 = new Uint8Array(16);
    new DataView(f64.buffer).setFloat64(0, 0.1, true);
    new DataView(f64.buffer).setFloat64(8, -3, true);
    expect(Array.from(toFloat32(f64, 'F64'))).toEqual([Math.fround(0.1), -3]);
  });

  test('non-float dtypes are refused with the tensor named', () => {
    expect(() => toFloat32(new Uint8Array(8), 'I64', 'model.safetensors, tensor "pos"')).toThrow(
      /model\.safetensors, tensor "pos" has dtype I64; qlab reads floating-point weights only/,
    );
  });

  test('f32 → f16 / bf16 round to nearest even and round-trip', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds up to inf
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie → even (0)
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie → even (2)
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f32ToF16Bits(NaN) & 0x7e00).toBe(0x7e00);
    for (let h = 0; h < 65536; h++) {
      const v = f16BitsToF32(h);
      if (!Number.isNaN(v)) expect(f32ToF16Bits(v)).toBe(h);
    }
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    for (let b = 0; b < 65536; b += 3) {
      const v = bf16BitsToF32(b);
      if (!Number.isNaN(v)) expect(f32ToBf16Bits(v)).toBe(b);
    }
  });
});
