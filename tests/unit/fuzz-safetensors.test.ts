/**
 * Fuzzing the safetensors reader (src/core/safetensors.ts) with seeded
 * mutations of real files: byte flips and splices anywhere, structural
 * mutations of the JSON header (rewritten with a correct length), and random
 * bytes. Every input is parsed the way the loader does (header from the
 * first bytes, then each float tensor converted): it is either refused with
 * the reader's own message or accepted with every tensor inside the file, so
 * nothing is allocated beyond the file's own size.
 */
import { describe, expect, it } from 'vitest';
import { DTYPE_BYTES, encodeFloats, FLOAT_DTYPES, headerByteLength, parseHeader, parseSafetensors, writeSafetensors } from '../../src/core/safetensors';
import { randomF32 } from '../helpers/random';
import { fuzz, jsonText, mutateBytes, mutateJson, random, randomBytes, randomJson } from './support/fuzz';

const seeds: Uint8Array[] = [
  writeSafetensors(
    [
      { name: 'model.embed_tokens.weight', dtype: 'F16', shape: [7, 5], data: encodeFloats(randomF32(35, 1), 'F16') },
      { name: 'model.norm.weight', dtype: 'F32', shape: [5], data: encodeFloats(randomF32(5, 2), 'F32') },
      { name: 'lm_head.weight', dtype: 'BF16', shape: [3, 5], data: encodeFloats(randomF32(15, 3), 'BF16') },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
      { name: 'mask', dtype: 'U8', shape: [4], data: new Uint8Array([1, 0, 1, 1]) },
    ],
    { format: 'pt' },
  ),
  writeSafetensors([{ name: 'w', dtype: 'F32', shape: [2, 3], data: encodeFloats(randomF32(6, 4), 'F32') }]),
];

/** A file with the given header text and `dataBytes` bytes of data. */
function withHeader(headerText: string, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + Math.max(0, dataBytes));
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  return out;
}

function headerOf(file: Uint8Array): { json: unknown; dataBytes: number } {
  const n = new DataView(file.buffer, file.byteOffset).getUint32(0, true);
  return { json: JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))), dataBytes: file.length - 8 - n };
}

/** What the loader does with a file: header from its prefix, then every float tensor as f32. */
function readAll(file: Uint8Array): { tensors: number; bytes: number } {
  const needed = headerByteLength(file.subarray(0, Math.min(8, file.length)).length < 8 ? new Uint8Array(8) : file, 'model.safetensors', file.length);
  const header = parseHeader(file.subarray(0, needed), 'model.safetensors', file.length);
  const parsed = parseSafetensors(file, 'model.safetensors');
  let bytes = 0;
  for (const entry of header.tensors.values()) {
    expect(entry.end).toBeLessThanOrEqual(file.length);
    expect(entry.begin).toBeGreaterThanOrEqual(header.dataStart);
    expect(entry.end - entry.begin).toBe(entry.elements * DTYPE_BYTES[entry.dtype]);
    bytes += entry.end - entry.begin;
    if (FLOAT_DTYPES.includes(entry.dtype)) expect(parsed.tensor(entry.name).length).toBe(entry.elements);
    else expect(() => parsed.tensor(entry.name)).toThrow(/floating-point weights only/);
  }
  expect(bytes).toBeLessThanOrEqual(file.length);
  return { tensors: header.tensors.size, bytes };
}

export const SAFETENSORS_FUZZ = { bytes: 5000, header: 5000, random: 2000 };

describe('fuzzing the safetensors reader', () => {
  it(`safetensors: ${SAFETENSORS_FUZZ.bytes} byte-mutated files, < 10 s`, { timeout: 10_000 }, async () => {
    const r = random(11);
    const stats = await fuzz(SAFETENSORS_FUZZ.bytes, (i) => mutateBytes(seeds[i % seeds.length], r), readAll);
    expect(stats.refused).toBeGreaterThan(0);
    expect(stats.accepted).toBeGreaterThan(0);
  });

  it(`safetensors header: ${SAFETENSORS_FUZZ.header} structurally mutated headers, < 10 s`, { timeout: 10_000 }, async () => {
    const r = random(12);
    const stats = await fuzz(
      SAFETENSORS_FUZZ.header,
      (i) => {
        const { json, dataBytes } = headerOf(seeds[i % seeds.length]);
        return withHeader(jsonText(mutateJson(json, r)), dataBytes + (r.chance(0.2) ? r.int(64) - 32 : 0));
      },
      readAll,
    );
    expect(stats.refused).toBeGreaterThan(SAFETENSORS_FUZZ.header / 2);
  });

  it(`safetensors: ${SAFETENSORS_FUZZ.random} random files and random JSON headers, < 5 s`, { timeout: 5_000 }, async () => {
    const r = random(13);
    const stats = await fuzz(SAFETENSORS_FUZZ.random, (i) => (i % 2 ? randomBytes(r, 256) : withHeader(jsonText(randomJson(r)), r.int(64))), readAll);
    expect(stats.refused).toBeGreaterThan(SAFETENSORS_FUZZ.random / 2);
  });

  it('refuses headers that claim 10¹² elements, or a header length of 2⁶³, before allocating anything', () => {
    const claims = [
      { w: { dtype: 'F32', shape: [1_000_000, 1_000_000], data_offsets: [0, 4e12] } },
      { w: { dtype: 'F16', shape: [1e12], data_offsets: [0, 2e12] } },
      { w: { dtype: 'F64', shape: [2 ** 26, 2 ** 26, 2 ** 26], data_offsets: [0, 8] } },
      { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, v: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } },
    ];
    for (const header of claims) {
      const file = withHeader(JSON.stringify(header), 16);
      const before = process.memoryUsage().arrayBuffers;
      expect(() => readAll(file)).toThrow(/model\.safetensors.*(ends at byte|more bytes than any file|overlap)/);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
    }
    const huge = new Uint8Array(64);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
    expect(() => headerByteLength(huge, 'model.safetensors', 64)).toThrow(/claim a .*-byte header, more than/);
  });

  it('refuses a header whose shape is nested thousands deep with its own message (no stack overflow)', () => {
    const deep = '['.repeat(9000) + '1' + ']'.repeat(9000);
    const file = withHeader(`{"w":{"dtype":"F32","shape":${deep},"data_offsets":[0,4]}}`, 4);
    expect(() => readAll(file)).toThrow(/tensor "w": shape .* is not a list of non-negative integers/);
  });
});
