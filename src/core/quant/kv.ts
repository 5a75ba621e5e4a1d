/**
 * KV-cache quantization: the format of a quantized key/value cache and its
 * CPU reference — defined here, once. The GPU writes it with
 * shaders/attention_kv_store.wgsl and reads it inside attention
 * (shaders/attention_kv.wgsl); both are tested against these functions.
 *
 * One cache row per position holds kvHeads·headDim values (K or V of every
 * key/value head), cut into groups of `groupSize` consecutive values (a
 * group never straddles two heads: groupSize divides headDim). Each group is
 * quantized asymmetrically to b-bit unsigned codes (b = 8 or 4):
 *
 *   lo    = f16(min(group))
 *   scale = f16((max(group) − lo) / (2^b − 1))     (1 when that is 0)
 *   q     = clamp(round((x − lo) / scale), 0, 2^b − 1)    (ties to even, as WGSL round)
 *   x̂     = q · scale + lo
 *
 * scale and lo are stored as two f16 in one u32 (WGSL pack2x16float: scale in
 * the low half, lo in the high half); codes are packed along the row, low bits
 * first (4 codes per u32 at 8 bits, 8 at 4 bits), so a group of groupSize
 * values (a multiple of 8) is groupSize·b/32 whole words.
 *
 * Bytes per cached token per layer = 2 (K and V) × (kvDim·b/8 + groups·4):
 * at b = 4, g = 32 that is 5 bits per value against 32 in f32.
 */

import { roundHalfEven } from './rtn';

export type KvBits = 8 | 4;

export interface KvCacheSpec {
  bits: KvBits;
  /** values per (position, group) scale: divides headDim, a multiple of 8 */
  groupSize: number;
}

/** A short name: "KV int8 g32". */
export function kvName(kv: KvCacheSpec | null | undefined): string {
  return kv ? `KV int${kv.bits} g${kv.groupSize}` : 'KV f32';
}

/** Throws unless `kv` fits a model with this head dimension; says what to choose instead. */
export function checkKvSpec(kv: KvCacheSpec, headDim: number): void {
  if (kv.bits !== 8 && kv.bits !== 4) throw new Error(`a ${kv.bits}-bit KV cache is not supported: choose 8 or 4 bits`);
  const g = kv.groupSize;
  if (!Number.isInteger(g) || g < 8 || g % 8 !== 0 || headDim % g !== 0) {
    const fits = [16, 32, 64, 128].filter((c) => c <= headDim && headDim % c === 0);
    throw new Error(`KV cache group size ${g} must be a multiple of 8 that divides the head dimension ${headDim}: choose ${fits.join(', ') || headDim}`);
  }
}

/** u32 words of codes per cache row of `kvDim` values. */
export function kvWordsPerRow(kvDim: number, bits: KvBits): number {
  return (kvDim * bits) / 32;
}

/** Bytes one cached position takes in one layer, K and V together, in this format (f32: 8·kvDim). */
export function kvBytesPerPosition(kvDim: number, kv: KvCacheSpec | null | undefined): number {
  if (!kv) return 2 * kvDim * 4;
  return 2 * (kvWordsPerRow(kvDim, kv.bits) * 4 + (kvDim / kv.groupSize) * 4);
}

// ---- f16 ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bits of the IEEE binary16 nearest to `v` (ties to even), as WGSL pack2x16float gives them. */
export function f16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half (or zero)
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** The value of binary16 bits. */
export function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? Number.NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Rounds to the nearest binary16 value. */
export function f16Round(v: number): number {
  return f16Value(f16Bits(v));
}

// ---- the reference ----

export interface QuantizedKvRows {
  rows: number;
  kvDim: number;
  spec: KvCacheSpec;
  /** [rows × kvWordsPerRow] packed codes */
  codes: Uint32Array;
  /** [rows × kvDim/groupSize] pack2x16float(scale, lo) */
  params: Uint32Array;
}

/** Scale and offset of one group from its minimum and maximum, both rounded to f16 as stored. */
export function kvGroupParams(min: number, max: number, bits: KvBits): { scale: number; lo: number } {
  const lo = f16Round(min);
  let scale = f16Round(Math.fround((Math.fround(max) - lo) / ((1 << bits) - 1)));
  if (!(scale > 0)) scale = 1;
  return { scale, lo };
}

/** Quantizes rows [rows, kvDim] (f32, row-major) into the cache format. */
export function quantizeKvRows(x: ArrayLike<number>, rows: number, kvDim: number, spec: KvCacheSpec): QuantizedKvRows {
  const { bits, groupSize } = spec;
  const wpr = kvWordsPerRow(kvDim, bits);
  const groups = kvDim / groupSize;
  const codes = new Uint32Array(rows * wpr);
  const params = new Uint32Array(rows * groups);
  const maxq = (1 << bits) - 1;
  const perWord = 32 / bits;
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const start = r * kvDim + g * groupSize;
      let lo = Infinity;
      let hi = -Infinity;
      for (let j = start; j < start + groupSize; j++) {
        lo = Math.min(lo, x[j]);
        hi = Math.max(hi, x[j]);
      }
      const p = kvGroupParams(lo, hi, bits);
      params[r * groups + g] = (f16Bits(p.scale) | (f16Bits(p.lo) << 16)) >>> 0;
      for (let j = 0; j < groupSize; j++) {
        const idx = g * groupSize + j;
        const q = Math.min(Math.max(roundHalfEven(Math.fround(Math.fround(x[start + j] - p.lo) / p.scale)), 0), maxq);
        const w = r * wpr + Math.floor(idx / perWord);
        codes[w] = (codes[w] | (q << ((idx % perWord) * bits))) >>> 0;
      }
    }
  }
  return { rows, kvDim, spec, codes, params };
}

/** The f32 values a quantized cache stands for, [rows, kvDim]. */
export function dequantizeKvRows(qk: QuantizedKvRows): Float32Array {
  const { rows, kvDim, spec } = qk;
  const { bits, groupSize } = spec;
  const wpr = kvWordsPerRow(kvDim, bits);
  const groups = kvDim / groupSize;
  const perWord = 32 / bits;
  const mask = (1 << bits) - 1;
  const out = new Float32Array(rows * kvDim);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < kvDim; i++) {
      const p = qk.params[r * groups + Math.floor(i / groupSize)];
      const scale = f16Value(p & 0xffff);
      const lo = f16Value(p >>> 16);
      const q = (qk.codes[r * wpr + Math.floor(i / perWord)] >>> ((i % perWord) * bits)) & mask;
      out[r * kvDim + i] = q * scale + lo;
    }
  }
  return out;
}
