/**
 * safetensors, read in pure TypeScript.
 *
 * Layout of a file (https://github.com/huggingface/safetensors):
 *
 *   bytes [0, 8)        N, the header length, u64 little-endian
 *   bytes [8, 8+N)      header: UTF-8 JSON
 *                         { "<tensor name>": { "dtype": "F16", "shape": [r, c],
 *                                              "data_offsets": [begin, end] },
 *                           "__metadata__"?: { "<key>": "<string>" } }
 *   bytes [8+N, size)   the data buffer; data_offsets are relative to its start,
 *                       tensors are row-major little-endian
 *
 * The header is parsed from a prefix of the file only, so callers can stream the
 * data tensor by tensor (HTTP Range requests, `Blob.slice`). Every claimed size
 * is checked against the real file size before anything is allocated: a header
 * claiming 10¹² elements produces an error, never a huge allocation.
 *
 * Conversions to f32 (F32, F16, BF16, F64) are exact: f16 subnormals, ±inf and
 * NaN are preserved (NaN payloads may be canonicalised for F64).
 */
import { previewJson } from './preview';

/** Bytes per element of every dtype safetensors defines with whole-byte elements. */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** dtypes `toFloat32` converts. */
export const FLOAT_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16', 'F64'];

/** One tensor entry of a header, with offsets made absolute to the file. */
export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** number of elements, product(shape) */
  elements: number;
  /** absolute byte offset of the first byte in the file */
  begin: number;
  /** absolute byte offset one past the last byte in the file */
  end: number;
}

export interface SafetensorsHeader {
  fileName: string;
  fileSize: number;
  /** N, the JSON header's length in bytes */
  headerLength: number;
  /** 8 + N: where the data buffer starts */
  dataStart: number;
  /** tensors in file order (by begin offset) */
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** lenient findings worth showing (gaps in the data buffer, odd metadata) */
  warnings: string[];
}

/** The largest header qlab accepts; real ones are a few hundred KB at most. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** "6291456" → "6,291,456" */
export function formatCount(n: number): string {
  const s = Math.trunc(Math.abs(n)).toString();
  const grouped = s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (n < 0 ? '-' : '') + grouped;
}

const REDOWNLOAD = 'download it again';

/**
 * Reads the first 8 bytes and returns how many bytes from the start of the file
 * `parseHeader` needs (8 + N), after checking N against the file size.
 */
export function headerByteLength(prefix: Uint8Array, fileName: string, fileSize: number): number {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    throw new Error(`${fileName}: file size ${fileSize} is not a byte count (internal error in the file source).`);
  }
  if (fileSize < 8) {
    throw new Error(
      `${fileName} is ${fileSize} bytes long, shorter than the 8-byte header length every safetensors file starts ` +
        `with: the file is empty or cut off — ${REDOWNLOAD}.`,
    );
  }
  if (prefix.length < 8) {
    throw new Error(`${fileName}: got ${prefix.length} bytes to read the header length, need 8 (internal error in the caller).`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const headerLength = high * 2 ** 32 + low;
  if (high !== 0 || headerLength > MAX_HEADER_BYTES) {
    throw new Error(
      `${fileName}: the first 8 bytes claim a ${formatCount(headerLength)}-byte header, more than the ` +
        `${formatCount(MAX_HEADER_BYTES)} qlab accepts: this is not a safetensors file, or it is damaged — ${REDOWNLOAD} ` +
        `(a Git LFS pointer or an HTML error page saved under this name looks like this too).`,
    );
  }
  if (headerLength < 2) {
    throw new Error(`${fileName}: the header length is ${headerLength} bytes, too short for a JSON object: the file is damaged — ${REDOWNLOAD}.`);
  }
  const needed = 8 + headerLength;
  if (needed > fileSize) {
    throw new Error(
      `${fileName} ends at byte ${formatCount(fileSize)} of at least ${formatCount(needed)} (its header alone is that long): ` +
        `the download was cut off, or this is not a safetensors file — ${REDOWNLOAD}.`,
    );
  }
  return needed;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// never JSON.stringify an untrusted value: one nested thousands deep overflows the stack
const describe = (value: unknown): string => previewJson(value);

/**
 * Parses and validates the header from the first bytes of a file.
 * `prefix` must hold at least `headerByteLength(...)` bytes; `fileSize` is the
 * size of the whole file, which every offset is checked against.
 */
export function parseHeader(prefix: Uint8Array, fileName: string, fileSize: number): SafetensorsHeader {
  const dataStart = headerByteLength(prefix, fileName, fileSize);
  const headerLength = dataStart - 8;
  if (prefix.length < dataStart) {
    throw new Error(
      `${fileName}: got the first ${formatCount(prefix.length)} bytes, the header needs ${formatCount(dataStart)} ` +
        `(internal error in the caller: read headerByteLength() bytes first).`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(prefix.subarray(8, dataStart));
  } catch {
    throw new Error(`${fileName}: the header is not valid UTF-8: the file is damaged or not safetensors — ${REDOWNLOAD}.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(
      `${fileName}: the header is not valid JSON (${(e as Error).message}): the file is damaged or not safetensors — ${REDOWNLOAD}.`,
    );
  }
  if (!isRecord(json)) {
    throw new Error(`${fileName}: the header is JSON but not an object of tensors: the file is not safetensors.`);
  }

  const warnings: string[] = [];
  const metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];

  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(raw)) {
        warnings.push(`${fileName}: __metadata__ is not an object; ignored.`);
        continue;
      }
      for (const [key, value] of Object.entries(raw)) {
        if (typeof value === 'string') metadata[key] = value;
        else warnings.push(`${fileName}: __metadata__.${key} is not a string; ignored.`);
      }
      continue;
    }
    const where = `${fileName}, tensor "${name}"`;
    if (!isRecord(raw)) throw new Error(`${where}: the header entry is ${describe(raw)}, not an object with dtype, shape and data_offsets.`);

    const dtype = raw.dtype;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      throw new Error(
        `${where}: unknown dtype ${describe(dtype)}; safetensors dtypes qlab knows: ${Object.keys(DTYPE_BYTES).join(', ')}. ` +
          `Convert the checkpoint to F16, BF16 or F32.`,
      );
    }
    const elementBytes = DTYPE_BYTES[dtype as SafetensorsDtype];

    const shape = raw.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: shape ${describe(shape)} is not a list of non-negative integers: the header is damaged.`);
    }
    let elements = 1;
    for (const d of shape as number[]) {
      elements *= d;
      if (!Number.isSafeInteger(elements * elementBytes)) {
        throw new Error(`${where}: shape ${describe(shape)} claims more bytes than any file can hold: the header is damaged.`);
      }
    }

    const offsets = raw.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw new Error(`${where}: data_offsets ${describe(offsets)} is not a pair [begin, end] with 0 ≤ begin ≤ end: the header is damaged.`);
    }
    const [begin, end] = offsets as [number, number];
    const expectedBytes = elements * elementBytes;
    if (end - begin !== expectedBytes) {
      throw new Error(
        `${where}: data_offsets [${begin}, ${end}] span ${formatCount(end - begin)} bytes, but ${dtype} ${describe(shape)} ` +
          `needs ${formatCount(expectedBytes)}: the header is damaged.`,
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], elements, begin: dataStart + begin, end: dataStart + end });
  }

  let last: TensorEntry | null = null;
  for (const entry of entries) if (!last || entry.end > last.end) last = entry;
  if (last && last.end > fileSize) {
    throw new Error(
      `${fileName} ends at byte ${formatCount(fileSize)} of ${formatCount(last.end)} (tensor "${last.name}" lies past the end): ` +
        `the download was cut off — ${REDOWNLOAD}.`,
    );
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = dataStart;
  let previous: TensorEntry | null = null;
  let gapBytes = 0;
  for (const entry of entries) {
    if (entry.begin === entry.end) continue; // empty tensors occupy no bytes
    if (previous && entry.begin < previous.end) {
      throw new Error(
        `${fileName}: tensors "${previous.name}" (bytes ${formatCount(previous.begin)}–${formatCount(previous.end)}) and ` +
          `"${entry.name}" (bytes ${formatCount(entry.begin)}–${formatCount(entry.end)}) overlap: the header is damaged — ${REDOWNLOAD}.`,
      );
    }
    gapBytes += entry.begin - covered;
    covered = entry.end;
    previous = entry;
  }
  gapBytes += fileSize - covered;
  if (gapBytes > 0) {
    // The format asks for a fully covered buffer; unused bytes are harmless to a reader.
    warnings.push(`${fileName}: ${formatCount(gapBytes)} bytes of the data buffer belong to no tensor.`);
  }

  return {
    fileName,
    fileSize,
    headerLength,
    dataStart,
    tensors: new Map(entries.map((e) => [e.name, e])),
    metadata,
    warnings,
  };
}

/** Parses a whole file held in memory (tests, small uploads). */
export function parseSafetensors(file: Uint8Array, fileName: string): { header: SafetensorsHeader; tensor(name: string): Float32Array } {
  const header = parseHeader(file, fileName, file.length);
  return {
    header,
    tensor(name: string): Float32Array {
      const entry = header.tensors.get(name);
      if (!entry) throw new Error(`${fileName} has no tensor "${name}".`);
      return toFloat32(file.subarray(entry.begin, entry.end), entry.dtype, `${fileName}, tensor "${name}"`);
    },
  };
}

// ---------------------------------------------------------------- conversions

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A copy of `bytes` in a fresh, aligned ArrayBuffer. */
function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

let f16Table: Float32Array | null = null;

/** The f32 value of an IEEE 754 binary16 bit pattern, exactly. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The f32 value of a bfloat16 bit pattern, exactly. */
export function bf16BitsToF32(b: number): number {
  const u = new Uint32Array([(b & 0xffff) << 16]);
  return new Float32Array(u.buffer)[0];
}

// One f32 ⇄ u32 scratch word for the scalar conversions below (a new typed
// array per value made them 100× slower: 1 M values/s).
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** binary16 bits of an f32 value, rounding to nearest even (for writing fixtures and exports). */
export function f32ToF16Bits(value: number): number {
  scratchF32[0] = value;
  return f32BitsToF16Bits(scratchU32[0]);
}

/** binary16 bits of the f32 whose bit pattern is `x`, rounding to nearest even. */
function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // rounds to ±0
    const m = mantissa | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let bits = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && bits & 1)) bits++; // may carry into the exponent, which is right
  return sign | bits;
}

/** bfloat16 bits of an f32 value, rounding to nearest even. */
export function f32ToBf16Bits(value: number): number {
  scratchF32[0] = value;
  return f32BitsToBf16Bits(scratchU32[0]);
}

function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/**
 * Converts a tensor's raw little-endian bytes to a new Float32Array.
 * `what` names the tensor in errors ("model.safetensors, tensor \"wte.weight\"").
 */
export function toFloat32(bytes: Uint8Array, dtype: SafetensorsDtype, what = 'tensor'): Float32Array {
  const elementBytes = DTYPE_BYTES[dtype];
  if (elementBytes === undefined) throw new Error(`${what}: unknown dtype "${dtype}".`);
  if (bytes.byteLength % elementBytes !== 0) {
    throw new Error(`${what}: ${formatCount(bytes.byteLength)} bytes is not a whole number of ${dtype} elements.`);
  }
  const n = bytes.byteLength / elementBytes;
  switch (dtype) {
    case 'F32': {
      if (littleEndian) {
        return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, n).slice() : new Float32Array(alignedCopy(bytes));
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case 'F16': {
      const table = (f16Table ??= buildF16Table());
      const out = new Float32Array(n);
      if (littleEndian) {
        const halves = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(alignedCopy(bytes));
        for (let i = 0; i < n; i++) out[i] = table[halves[i]];
      } else {
        for (let i = 0; i < n; i++) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
      }
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = ((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16) >>> 0;
      return out;
    }
    case 'F64': {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    default:
      throw new Error(`${what} has dtype ${dtype}; qlab reads floating-point weights only (${FLOAT_DTYPES.join(', ')}).`);
  }
}

function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) table[h] = f16BitsToF32(h);
  // Keep NaN payloads bit-exact (f16 payload shifted into the f32 mantissa).
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) bits[h] = (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
  }
  return table;
}

// -------------------------------------------------------------------- writing

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** raw little-endian bytes, product(shape) · dtype size long */
  data: Uint8Array;
}

/** Serialises tensors into a safetensors file (tests, fixtures, exports). Offsets follow the given order. */
export function writeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new Error(`tensor "${t.name}": ${t.data.byteLength} bytes given, ${t.dtype} ${JSON.stringify(t.shape)} needs ${expected}.`);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // the reference writer pads with spaces to 8 bytes
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}

/** Raw little-endian bytes of f32 values in the given dtype (F32, F16 or BF16). */
export function encodeFloats(values: ArrayLike<number>, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32') {
    const out = new Uint8Array(values.length * 4);
    if (littleEndian) {
      new Float32Array(out.buffer).set(values);
      return out;
    }
    const view = new DataView(out.buffer);
    for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
    return out;
  }
  const out = new Uint8Array(values.length * 2);
  const convert = dtype === 'F16' ? f32BitsToF16Bits : f32BitsToBf16Bits;
  // whole tensors at a time through one f32 view of the values (a model's worth takes seconds, not minutes)
  const chunk = 1 << 20;
  const f32 = new Float32Array(Math.min(chunk, values.length));
  const u32 = new Uint32Array(f32.buffer);
  const halves = littleEndian ? new Uint16Array(out.buffer) : null;
  const view = new DataView(out.buffer);
  for (let start = 0; start < values.length; start += chunk) {
    const n = Math.min(chunk, values.length - start);
    if (values instanceof Float32Array || values instanceof Float64Array) f32.set(values.subarray(start, start + n));
    else for (let i = 0; i < n; i++) f32[i] = values[start + i];
    if (halves) for (let i = 0; i < n; i++) halves[start + i] = convert(u32[i]);
    else for (let i = 0; i < n; i++) view.setUint16((start + i) * 2, convert(u32[i]), true);
  }
  return out;
}
