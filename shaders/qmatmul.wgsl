// qmatmul — y = x · Ŵᵀ (+ bias), Ŵ dequantized on the fly from packed codes.
//
//   y[m, n] = Σ_k x[m, k] · (q[n, k] − zero[n, g]) · scale[n, g] (+ bias[n]),   g = ⌊k / GROUP⌋
//
// The packed format is defined in src/core/quant/format.ts (its CPU
// `dequantize` is the reference these kernels are tested against):
//   x      [M, K]  f32 row-major. M is not passed: it is the bound size of x
//                  divided by K (the caller binds exactly M·K floats).
//   codes  [N, rowVec4] vec4<u32>: each row is a little-endian bitstream, code k
//                  at bits [k·BITS, k·BITS + BITS); 32 codes are exactly BITS
//                  words; rows padded to whole vec4 (16 bytes).
//   scales [N, K/GROUP] f32.
//   zeros  [N, K/GROUP] u8, four per u32, low byte first (asymmetric only; a
//                  symmetric layer binds its scales here and the kernel uses the
//                  implicit zero point 2^(BITS−1)).
//   bias   [N] f32 (bound to anything when HAS_BIAS is false).
//   y      [M, N]  f32 row-major.
// K is a multiple of 32 and of GROUP; N and M are arbitrary.
//
// Bindings (group 0):
//   0 x: array<vec4<f32>>   1 codes: array<vec4<u32>>   2 scales: array<f32>
//   3 zeros: array<u32>     4 bias: array<f32>          5 y: array<f32> (read_write)
//   6 params: uniform Params
//   7 words: array<u32>     the codes again, as u32 (gemmCpu only, instead of 1)
//
// Entry points (one workgroup = 256 invocations; dispatch is 2D, workgroups
// numbered wid.x + wid.y · num_workgroups.x, to stay under 65535 per dimension).
// The dispatcher (src/gpu/qlinear.ts) runs decode through qgemv.wgsl and GEMMs
// of 64 rows or more through qgemm.wgsl (128 × 128 tiles); `gemv` here is the
// portable baseline the bench compares with, `gemm` serves M < 64.
//   gemv — for small M (decode). A team of TPR invocations shares a row
//          quadruple: each invocation walks the row's code vec4s with stride TPR
//          (consecutive invocations read consecutive 16-byte lines), reuses each
//          x chunk for ROWS = 4 rows, and the team reduces through workgroup
//          memory. Workgroups: ⌈N / (ROWS · 256 / TPR)⌉. Codes become floats
//          with the 2^23 trick (bits of 2^23 | q is the float 2^23 + q), with no
//          int→float conversion, which is slow on some GPUs.
//   gemm — for many rows (prefill, perplexity windows). 64×64 output tiles,
//          K in steps of 32 (one code block, inside one group); each step the
//          workgroup stages x[64 × 32] and the dequantized Ŵ[64 × 32] in
//          workgroup memory and each invocation accumulates a 4×4 sub-tile.
//          Workgroups: ⌈M / 64⌉ · ⌈N / 64⌉, M tiles fastest (Ŵ tiles reused
//          from cache).
//   gemmCpu — for CPU adapters (SwiftShader), any M, decode included: no
//          workgroup memory and no barriers (a CPU driver runs a workgroup as
//          fibers and switches through all of them at every barrier). One
//          invocation computes CPU_BM × CPU_BN = 16 × 16 outputs straight from
//          storage, 8 codes of each of its 16 rows at a time, zero point and
//          scale per group hoisted out of the loop. 64 invocations per
//          workgroup; workgroups: ⌈⌈M / 16⌉ · ⌈N / 16⌉ / 64⌉, x blocks fastest.
//
// Specialization: gemv, the bandwidth-bound hot path, is specialized by
// override constants BITS (2, 3, 4, 8), GROUP (multiple of 32), SYMMETRIC,
// HAS_BIAS and TPR (team width, a power of two from 8 to 256); gemmCpu by BITS
// only. gemm reads the scheme from params instead: dequantizing is 1/64 of its
// work, and one pipeline for every scheme keeps compile time down (seconds per
// pipeline on some drivers). All accumulation is f32 (shader-f16 is missing on
// some adapters).

override BITS: u32 = 4u;
override GROUP: u32 = 128u;
override SYMMETRIC: bool = false;
override HAS_BIAS: bool = false;
override TPR: u32 = 32u;

const WG: u32 = 256u;
const ROWS: u32 = 4u;
const TILE: u32 = 64u;
const BK: u32 = 32u;
const MAGIC: u32 = 0x4B000000u; // f32 bits of 2^23

struct Params {
  n: u32,
  k: u32,
  groups: u32,     // K / group size
  rowVec4: u32,    // vec4<u32> per packed row
  bits: u32,       // gemm: code width
  groupSize: u32,  // gemm, gemmCpu: inputs per group
  symmetric: u32,  // gemm, gemmCpu: 1 = implicit zero point 2^(bits−1)
  hasBias: u32,    // gemm, gemmCpu: 1 = add bias
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read> zeros: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;
@group(0) @binding(7) var<storage, read> words: array<u32>;  // codes as u32 (gemmCpu only)

fn zeroPoint(row: u32, g: u32) -> u32 {
  if (SYMMETRIC) {
    return 1u << (BITS - 1u);
  }
  let i = row * params.groups + g;
  return (zeros[i >> 2u] >> ((i & 3u) * 8u)) & 0xFFu;
}

// 2^23 + zero, so that (2^23 + q) − (2^23 + zero) = q − zero exactly.
fn zeroMagic(row: u32, g: u32) -> f32 {
  return bitcast<f32>(MAGIC | zeroPoint(row, g));
}

// q − zero for the four codes of `w` at bit offsets `s` (each < 2^mask bits).
fn codes4(w: u32, s: vec4<u32>, mask: u32, zm: f32) -> vec4<f32> {
  return bitcast<vec4<f32>>(((vec4<u32>(w) >> s) & vec4<u32>(mask)) | vec4<u32>(MAGIC)) - vec4<f32>(zm);
}

// Σ (q − zero)·x over the 8 codes of a 24-bit run of 3-bit codes.
fn dot3x8(a: u32, xa: vec4<f32>, xb: vec4<f32>, zm: f32) -> f32 {
  return dot(codes4(a, vec4<u32>(0u, 3u, 6u, 9u), 7u, zm), xa)
       + dot(codes4(a, vec4<u32>(12u, 15u, 18u, 21u), 7u, zm), xb);
}

// Σ (q − zero)·x over the 8 codes of a 4-bit word.
fn dot4x8(w: u32, xa: vec4<f32>, xb: vec4<f32>, zm: f32) -> f32 {
  return dot(codes4(w, vec4<u32>(0u, 4u, 8u, 12u), 15u, zm), xa)
       + dot(codes4(w, vec4<u32>(16u, 20u, 24u, 28u), 15u, zm), xb);
}

// Σ (q − zero)·x over the 16 codes of a 2-bit word.
fn dot2x16(w: u32, xa: vec4<f32>, xb: vec4<f32>, xc: vec4<f32>, xd: vec4<f32>, zm: f32) -> f32 {
  return dot(codes4(w, vec4<u32>(0u, 2u, 4u, 6u), 3u, zm), xa)
       + dot(codes4(w, vec4<u32>(8u, 10u, 12u, 14u), 3u, zm), xb)
       + dot(codes4(w, vec4<u32>(16u, 18u, 20u, 22u), 3u, zm), xc)
       + dot(codes4(w, vec4<u32>(24u, 26u, 28u, 30u), 3u, zm), xd);
}

// Σ (q − zero)·x over the 4 codes of an 8-bit word.
fn dot8x4(w: u32, xa: vec4<f32>, zm: f32) -> f32 {
  return dot(codes4(w, vec4<u32>(0u, 8u, 16u, 24u), 255u, zm), xa);
}

// ---------------------------------------------------------------- gemv ----

var<workgroup> partial: array<vec4<f32>, WG>;

// Units: the codes one invocation handles per step. 2/4/8 bits: one vec4 (64,
// 32, 16 codes); 3 bits: three vec4 (128 codes, four whole 32-code blocks).
fn unitCodes() -> u32 {
  if (BITS == 3u) { return 128u; }
  return 128u / BITS;
}

// x chunk of one 32-code block: 8 vec4 starting at vec4 index `xi`.
struct XBlock { v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>,
                v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32> }

fn loadXBlock(xi: u32) -> XBlock {
  return XBlock(x[xi], x[xi + 1u], x[xi + 2u], x[xi + 3u], x[xi + 4u], x[xi + 5u], x[xi + 6u], x[xi + 7u]);
}

// The 3-bit block of 32 codes in words (a, b, c), as four 24-bit runs of 8 codes.
fn dotBlock3(a: u32, b: u32, c: u32, xb: XBlock, zm: f32) -> f32 {
  let r0 = a & 0xFFFFFFu;
  let r1 = ((a >> 24u) | (b << 8u)) & 0xFFFFFFu;
  let r2 = ((b >> 16u) | (c << 16u)) & 0xFFFFFFu;
  let r3 = c >> 8u;
  return dot3x8(r0, xb.v0, xb.v1, zm) + dot3x8(r1, xb.v2, xb.v3, zm)
       + dot3x8(r2, xb.v4, xb.v5, zm) + dot3x8(r3, xb.v6, xb.v7, zm);
}

// Word `i` (0..11) of a 3-bit unit held as three vec4.
fn word3(c0: vec4<u32>, c1: vec4<u32>, c2: vec4<u32>, i: u32) -> u32 {
  if (i < 4u) { return c0[i]; }
  if (i < 8u) { return c1[i - 4u]; }
  return c2[i - 8u];
}

@compute @workgroup_size(WG)
fn gemv(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let k = params.k;
  let m = arrayLength(&x) * 4u / k;
  let flat = wid.x + wid.y * nwg.x;
  let team = lid / TPR;
  let lane = lid % TPR;
  let row0 = (flat * (WG / TPR) + team) * ROWS;
  // Rows past N repeat the last row (in bounds, never written).
  var rows: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { rows[r] = min(row0 + r, n - 1u); }
  let uc = unitCodes();
  let units = (k + uc - 1u) / uc;
  let xRow = k / 4u;

  for (var mi = 0u; mi < m; mi++) {
    var acc = vec4<f32>(0.0);
    for (var u = lane; u < units; u += TPR) {
      let k0 = u * uc;
      let xi = mi * xRow + k0 / 4u;
      if (BITS == 4u) {
        let xb = loadXBlock(xi);
        let g = k0 / GROUP;
        for (var r = 0u; r < ROWS; r++) {
          let row = rows[r];
          let c = codes[row * params.rowVec4 + u];
          let zm = zeroMagic(row, g);
          let s = dot4x8(c.x, xb.v0, xb.v1, zm) + dot4x8(c.y, xb.v2, xb.v3, zm)
                + dot4x8(c.z, xb.v4, xb.v5, zm) + dot4x8(c.w, xb.v6, xb.v7, zm);
          acc[r] += s * scales[row * params.groups + g];
        }
      } else if (BITS == 8u) {
        let x0 = x[xi]; let x1 = x[xi + 1u]; let x2 = x[xi + 2u]; let x3 = x[xi + 3u];
        let g = k0 / GROUP;
        for (var r = 0u; r < ROWS; r++) {
          let row = rows[r];
          let c = codes[row * params.rowVec4 + u];
          let zm = zeroMagic(row, g);
          let s = dot8x4(c.x, x0, zm) + dot8x4(c.y, x1, zm) + dot8x4(c.z, x2, zm) + dot8x4(c.w, x3, zm);
          acc[r] += s * scales[row * params.groups + g];
        }
      } else if (BITS == 2u) {
        // Two 32-code blocks; the second is row padding when K mod 64 = 32.
        var c: array<vec4<u32>, ROWS>;
        for (var r = 0u; r < ROWS; r++) { c[r] = codes[rows[r] * params.rowVec4 + u]; }
        for (var b = 0u; b < 2u; b++) {
          let kb = k0 + b * 32u;
          if (kb < k) {
            let xb = loadXBlock(xi + b * 8u);
            let g = kb / GROUP;
            for (var r = 0u; r < ROWS; r++) {
              let row = rows[r];
              let zm = zeroMagic(row, g);
              let wa = c[r][2u * b];
              let wb = c[r][2u * b + 1u];
              let s = dot2x16(wa, xb.v0, xb.v1, xb.v2, xb.v3, zm) + dot2x16(wb, xb.v4, xb.v5, xb.v6, xb.v7, zm);
              acc[r] += s * scales[row * params.groups + g];
            }
          }
        }
      } else {
        // BITS == 3: a unit is three vec4 = four 32-code blocks of three words;
        // blocks past K are row padding (K mod 128 ≠ 0), their vec4 may not exist.
        let nb = min(4u, (k - k0) / 32u);
        var c0: array<vec4<u32>, ROWS>;
        var c1: array<vec4<u32>, ROWS>;
        var c2: array<vec4<u32>, ROWS>;
        for (var r = 0u; r < ROWS; r++) {
          let base = rows[r] * params.rowVec4 + 3u * u;
          c0[r] = codes[base];
          if (nb > 1u) { c1[r] = codes[base + 1u]; }
          if (nb > 2u) { c2[r] = codes[base + 2u]; }
        }
        // A constant trip count (guarded inside) lets the compiler unroll and keep c0..c2 in registers.
        for (var b = 0u; b < 4u; b++) {
          if (b < nb) {
            let kb = k0 + b * 32u;
            let xb = loadXBlock(xi + b * 8u);
            let g = kb / GROUP;
            for (var r = 0u; r < ROWS; r++) {
              let row = rows[r];
              let zm = zeroMagic(row, g);
              let s = dotBlock3(word3(c0[r], c1[r], c2[r], 3u * b), word3(c0[r], c1[r], c2[r], 3u * b + 1u),
                                word3(c0[r], c1[r], c2[r], 3u * b + 2u), xb, zm);
              acc[r] += s * scales[row * params.groups + g];
            }
          }
        }
      }
    }

    // Team reduction through workgroup memory (TPR is a power of two).
    partial[lid] = acc;
    for (var stride = TPR / 2u; stride > 0u; stride >>= 1u) {
      workgroupBarrier();
      if (lane < stride) { partial[lid] += partial[lid + stride]; }
    }
    workgroupBarrier();
    if (lane == 0u) {
      let total = partial[lid];
      for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r;
        if (row < n) {
          var v = total[r];
          if (HAS_BIAS) { v += bias[row]; }
          y[mi * n + row] = v;
        }
      }
    }
  }
}

// ---------------------------------------------------------------- gemm ----

// Staged tiles, k-major: xs[kk · 16 + m/4][m % 4] = x[m, k0 + kk], likewise ws for Ŵ[n, ·].
var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> ws: array<vec4<f32>, 512>;

// Code j (0..31) of the 32-code block starting at u32 word `base`, `bits` wide.
fn blockCode(base: u32, j: u32, bits: u32) -> u32 {
  let bit = j * bits;
  let wi = base + (bit >> 5u);
  let off = bit & 31u;
  var v = codes[wi >> 2u][wi & 3u] >> off;
  if (off + bits > 32u) {
    let wn = wi + 1u;
    v |= codes[wn >> 2u][wn & 3u] << (32u - off);
  }
  return v & ((1u << bits) - 1u);
}

@compute @workgroup_size(WG)
fn gemm(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let k = params.k;
  let m = arrayLength(&x) * 4u / k;
  let tilesM = (m + TILE - 1u) / TILE;
  let tilesN = (n + TILE - 1u) / TILE;
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= tilesM * tilesN) { return; }
  let mBase = (flat % tilesM) * TILE;
  let nBase = (flat / tilesM) * TILE;
  let tx = lid % 16u;  // output columns nBase + 4·tx …
  let ty = lid / 16u;  // output rows    mBase + 4·ty …
  let xRow = k / 4u;
  let rowWords = params.rowVec4 * 4u;
  let bits = params.bits;
  // Ŵ staging: invocation → row nBase + lid/4, codes 8·(lid%4) … +7 of the block.
  let wn = lid / 4u;
  let wSlot = lid % 4u;
  let wRow = nBase + wn;

  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < k; k0 += BK) {
    for (var j = 0u; j < 2u; j++) {
      let idx = lid + j * WG;
      let mm = idx / 8u;
      let kq = idx % 8u;
      let row = mBase + mm;
      var v = vec4<f32>(0.0);
      if (row < m) { v = x[row * xRow + k0 / 4u + kq]; }
      for (var c = 0u; c < 4u; c++) { xs[(kq * 4u + c) * 16u + mm / 4u][mm % 4u] = v[c]; }
    }
    if (wRow < n) {
      let g = k0 / params.groupSize;
      let gi = wRow * params.groups + g;
      let scale = scales[gi];
      var zero = f32(1u << (bits - 1u));
      if (params.symmetric == 0u) { zero = f32((zeros[gi >> 2u] >> ((gi & 3u) * 8u)) & 0xFFu); }
      let base = wRow * rowWords + (k0 / 32u) * bits;
      for (var i = 0u; i < 8u; i++) {
        let j = wSlot * 8u + i;
        ws[j * 16u + wn / 4u][wn % 4u] = (f32(blockCode(base, j, bits)) - zero) * scale;
      }
    } else {
      for (var i = 0u; i < 8u; i++) { ws[(wSlot * 8u + i) * 16u + wn / 4u][wn % 4u] = 0.0; }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a = xs[kk * 16u + ty];
      let b = ws[kk * 16u + tx];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let row = mBase + ty * 4u + i;
    if (row < m) {
      for (var c = 0u; c < 4u; c++) {
        let col = nBase + tx * 4u + c;
        if (col < n) {
          var v = acc[i][c];
          if (params.hasBias != 0u) { v += bias[col]; }
          y[row * n + col] = v;
        }
      }
    }
  }
}

// ------------------------------------------------------------- gemmCpu ----

// On a CPU driver a storage load is a gather, lane by lane, and a vector shift
// is emulated lane by lane, so this kernel gives each invocation a block of
// CPU_BM × CPU_BN = 16 × 16 outputs, reads codes as u32 runs of 8 (binding 7)
// and decodes them without per-code shifts; each decoded chunk of 8 codes × 16
// rows serves all 16 rows of x. Written out by hand, with no array indexed in a
// loop (a CPU driver keeps such an array in memory), and no workgroup memory
// or barriers.
const CPU_WG: u32 = 64u;
const CPU_BM: u32 = 16u;  // rows of x per invocation
const CPU_BN: u32 = 16u;  // rows of Ŵ (output features) per invocation

// The invocation's block: first x row and first Ŵ row, or false past the end.
struct CpuBlock { m0: u32, n0: u32, valid: bool }

fn cpuBlock(lid: u32, wid: vec3<u32>, nwg: vec3<u32>, m: u32) -> CpuBlock {
  let blocksM = (m + CPU_BM - 1u) / CPU_BM;
  let blocksN = (params.n + CPU_BN - 1u) / CPU_BN;
  let item = (wid.x + wid.y * nwg.x) * CPU_WG + lid;
  return CpuBlock((item % blocksM) * CPU_BM, (item / blocksM) * CPU_BN, item < blocksM * blocksN);
}

// Decoding without shifts: the four codes of a quad are masked in place and
// converted to float, giving q·2^p (p = the code's bit position), and mapped by
//   ŵ = (q·2^p − zero·2^p) · (scale·2^−p)
// which is (q − zero) · scale rounded once, as in the reference: the powers of
// two are exact. GroupRow holds zero·2^p and scale·2^−p of one (row, group).
struct GroupRow { zero: vec4<f32>, scale: vec4<f32> }

fn groupRow(row: u32, g: u32) -> GroupRow {
  let i = row * params.groups + g;
  var zero = f32(1u << (BITS - 1u));
  if (params.symmetric == 0u) { zero = f32((zeros[i >> 2u] >> ((i & 3u) * 8u)) & 0xFFu); }
  var p: vec4<f32>;
  if (BITS == 8u) {
    p = vec4<f32>(1.0, 256.0, 1.0, 256.0);  // two codes per 16-bit half, see decodeChunk
  } else {
    let step = f32(1u << BITS);
    p = vec4<f32>(1.0, step, step * step, step * step * step);
  }
  return GroupRow(zero * p, scales[i] / p);
}

// Ŵ of the four codes of a quad: code r at bits [r·BITS, r·BITS + BITS) of v[r]
// (BITS = 8: at bits 0 and 8 of each 16-bit half).
fn quad(v: vec4<u32>, gr: GroupRow) -> vec4<f32> {
  var mask: vec4<u32>;
  if (BITS == 8u) {
    mask = vec4<u32>(0xFFu, 0xFF00u, 0xFFu, 0xFF00u);
  } else {
    let m = (1u << BITS) - 1u;
    mask = vec4<u32>(m, m << BITS, m << (2u * BITS), m << (3u * BITS));
  }
  // All masked values are below 2^31, so the signed conversion is exact.
  return (vec4<f32>(bitcast<vec4<i32>>(v & mask)) - gr.zero) * gr.scale;
}

// Ŵ of codes 8c … 8c + 7 of the row whose codes start at word `rowWord`.
struct Chunk { lo: vec4<f32>, hi: vec4<f32> }

fn decodeChunk(rowWord: u32, c: u32, gr: GroupRow) -> Chunk {
  if (BITS == 8u) {
    let a = words[rowWord + 2u * c];
    let b = words[rowWord + 2u * c + 1u];
    return Chunk(quad(vec4<u32>(a, a, a >> 16u, a >> 16u), gr), quad(vec4<u32>(b, b, b >> 16u, b >> 16u), gr));
  }
  // The run of 8·BITS bits: one word (4 bits), half a word (2 bits), or 24
  // bits at bit 0, 8, 16 or 24 of a word, continued in the next one (3 bits).
  var run: u32;
  if (BITS == 4u) {
    run = words[rowWord + c];
  } else {
    let bit = c * 8u * BITS;
    let wi = rowWord + (bit >> 5u);
    let off = bit & 31u;
    run = words[wi] >> off;
    if (BITS == 3u) { run |= words[wi + select(0u, 1u, off > 8u)] << ((32u - off) & 31u); }
  }
  // min(): the shift must stay below 32 in the (unused) 8-bit specialization too.
  return Chunk(quad(vec4<u32>(run), gr), quad(vec4<u32>(run >> (4u * min(BITS, 4u))), gr));
}

// Four Ŵ rows at one chunk, as matrix columns: l for codes 0–3, h for 4–7.
struct Quad { l: mat4x4<f32>, h: mat4x4<f32> }

fn decodeQuad(o: vec4<u32>, c: u32, ga: GroupRow, gb: GroupRow, gc: GroupRow, gd: GroupRow) -> Quad {
  let a = decodeChunk(o.x, c, ga);
  let b = decodeChunk(o.y, c, gb);
  let d = decodeChunk(o.z, c, gc);
  let e = decodeChunk(o.w, c, gd);
  return Quad(mat4x4<f32>(a.lo, b.lo, d.lo, e.lo), mat4x4<f32>(a.hi, b.hi, d.hi, e.hi));
}

// The block's 16 Ŵ rows at one chunk.
struct WChunk { q0: Quad, q1: Quad, q2: Quad, q3: Quad }

// The 16 outputs of one x row: c_j = y[row, n0 + 4j … n0 + 4j + 3].
struct Acc { c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32> }

// (v·q[0], v·q[1], v·q[2], v·q[3]); explicit dots compile to better CPU code than v * q.
fn dot4(v: vec4<f32>, q: mat4x4<f32>) -> vec4<f32> {
  return vec4<f32>(dot(v, q[0]), dot(v, q[1]), dot(v, q[2]), dot(v, q[3]));
}

fn macQuad(a: vec4<f32>, lo: vec4<f32>, hi: vec4<f32>, q: Quad) -> vec4<f32> {
  return a + dot4(lo, q.l) + dot4(hi, q.h);
}

// acc += x chunk (lo: codes 0–3, hi: 4–7) · the 16 Ŵ rows.
fn mac(a: Acc, lo: vec4<f32>, hi: vec4<f32>, w: WChunk) -> Acc {
  return Acc(macQuad(a.c0, lo, hi, w.q0), macQuad(a.c1, lo, hi, w.q1), macQuad(a.c2, lo, hi, w.q2), macQuad(a.c3, lo, hi, w.q3));
}

// y[row, n0 + j] = output j (+ bias), the parts inside [M, N].
fn storeCpuRow(a: Acc, row: u32, n0: u32, m: u32) {
  if (row >= m) { return; }
  let n = params.n;
  let v = mat4x4<f32>(a.c0, a.c1, a.c2, a.c3);
  for (var j = 0u; j < CPU_BN; j++) {
    let col = n0 + j;
    if (col < n) {
      var o = v[j / 4u][j % 4u];
      if (params.hasBias != 0u) { o += bias[col]; }
      y[row * n + col] = o;
    }
  }
}

@compute @workgroup_size(CPU_WG)
fn gemmCpu(@builtin(local_invocation_index) lid: u32,
           @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let xRow = params.k / 4u;
  let m = arrayLength(&x) / xRow;
  let blk = cpuBlock(lid, wid, nwg, m);
  if (!blk.valid) { return; }
  // Rows past M or N repeat the last row (in bounds, never written).
  let xo0 = min(blk.m0 + 0u, m - 1u) * xRow;
  let xo1 = min(blk.m0 + 1u, m - 1u) * xRow;
  let xo2 = min(blk.m0 + 2u, m - 1u) * xRow;
  let xo3 = min(blk.m0 + 3u, m - 1u) * xRow;
  let xo4 = min(blk.m0 + 4u, m - 1u) * xRow;
  let xo5 = min(blk.m0 + 5u, m - 1u) * xRow;
  let xo6 = min(blk.m0 + 6u, m - 1u) * xRow;
  let xo7 = min(blk.m0 + 7u, m - 1u) * xRow;
  let xo8 = min(blk.m0 + 8u, m - 1u) * xRow;
  let xo9 = min(blk.m0 + 9u, m - 1u) * xRow;
  let xo10 = min(blk.m0 + 10u, m - 1u) * xRow;
  let xo11 = min(blk.m0 + 11u, m - 1u) * xRow;
  let xo12 = min(blk.m0 + 12u, m - 1u) * xRow;
  let xo13 = min(blk.m0 + 13u, m - 1u) * xRow;
  let xo14 = min(blk.m0 + 14u, m - 1u) * xRow;
  let xo15 = min(blk.m0 + 15u, m - 1u) * xRow;
  let r0 = min(blk.n0 + 0u, n - 1u);
  let r1 = min(blk.n0 + 1u, n - 1u);
  let r2 = min(blk.n0 + 2u, n - 1u);
  let r3 = min(blk.n0 + 3u, n - 1u);
  let r4 = min(blk.n0 + 4u, n - 1u);
  let r5 = min(blk.n0 + 5u, n - 1u);
  let r6 = min(blk.n0 + 6u, n - 1u);
  let r7 = min(blk.n0 + 7u, n - 1u);
  let r8 = min(blk.n0 + 8u, n - 1u);
  let r9 = min(blk.n0 + 9u, n - 1u);
  let r10 = min(blk.n0 + 10u, n - 1u);
  let r11 = min(blk.n0 + 11u, n - 1u);
  let r12 = min(blk.n0 + 12u, n - 1u);
  let r13 = min(blk.n0 + 13u, n - 1u);
  let r14 = min(blk.n0 + 14u, n - 1u);
  let r15 = min(blk.n0 + 15u, n - 1u);
  let rowWords = params.rowVec4 * 4u;
  let o0 = vec4<u32>(r0, r1, r2, r3) * rowWords;
  let o1 = vec4<u32>(r4, r5, r6, r7) * rowWords;
  let o2 = vec4<u32>(r8, r9, r10, r11) * rowWords;
  let o3 = vec4<u32>(r12, r13, r14, r15) * rowWords;
  var a0 = Acc();
  var a1 = Acc();
  var a2 = Acc();
  var a3 = Acc();
  var a4 = Acc();
  var a5 = Acc();
  var a6 = Acc();
  var a7 = Acc();
  var a8 = Acc();
  var a9 = Acc();
  var a10 = Acc();
  var a11 = Acc();
  var a12 = Acc();
  var a13 = Acc();
  var a14 = Acc();
  var a15 = Acc();
  let chunks = params.groupSize / 8u;  // a group is a whole number of chunks
  for (var g = 0u; g < params.groups; g++) {
    let g0 = groupRow(r0, g);
    let g1 = groupRow(r1, g);
    let g2 = groupRow(r2, g);
    let g3 = groupRow(r3, g);
    let g4 = groupRow(r4, g);
    let g5 = groupRow(r5, g);
    let g6 = groupRow(r6, g);
    let g7 = groupRow(r7, g);
    let g8 = groupRow(r8, g);
    let g9 = groupRow(r9, g);
    let g10 = groupRow(r10, g);
    let g11 = groupRow(r11, g);
    let g12 = groupRow(r12, g);
    let g13 = groupRow(r13, g);
    let g14 = groupRow(r14, g);
    let g15 = groupRow(r15, g);
    for (var c = g * chunks; c < (g + 1u) * chunks; c++) {
      let w = WChunk(decodeQuad(o0, c, g0, g1, g2, g3),
                     decodeQuad(o1, c, g4, g5, g6, g7),
                     decodeQuad(o2, c, g8, g9, g10, g11),
                     decodeQuad(o3, c, g12, g13, g14, g15));
      let xi = 2u * c;
      a0 = mac(a0, x[xo0 + xi], x[xo0 + xi + 1u], w);
      a1 = mac(a1, x[xo1 + xi], x[xo1 + xi + 1u], w);
      a2 = mac(a2, x[xo2 + xi], x[xo2 + xi + 1u], w);
      a3 = mac(a3, x[xo3 + xi], x[xo3 + xi + 1u], w);
      a4 = mac(a4, x[xo4 + xi], x[xo4 + xi + 1u], w);
      a5 = mac(a5, x[xo5 + xi], x[xo5 + xi + 1u], w);
      a6 = mac(a6, x[xo6 + xi], x[xo6 + xi + 1u], w);
      a7 = mac(a7, x[xo7 + xi], x[xo7 + xi + 1u], w);
      a8 = mac(a8, x[xo8 + xi], x[xo8 + xi + 1u], w);
      a9 = mac(a9, x[xo9 + xi], x[xo9 + xi + 1u], w);
      a10 = mac(a10, x[xo10 + xi], x[xo10 + xi + 1u], w);
      a11 = mac(a11, x[xo11 + xi], x[xo11 + xi + 1u], w);
      a12 = mac(a12, x[xo12 + xi], x[xo12 + xi + 1u], w);
      a13 = mac(a13, x[xo13 + xi], x[xo13 + xi + 1u], w);
      a14 = mac(a14, x[xo14 + xi], x[xo14 + xi + 1u], w);
      a15 = mac(a15, x[xo15 + xi], x[xo15 + xi + 1u], w);
    }
  }
  storeCpuRow(a0, blk.m0 + 0u, blk.n0, m);
  storeCpuRow(a1, blk.m0 + 1u, blk.n0, m);
  storeCpuRow(a2, blk.m0 + 2u, blk.n0, m);
  storeCpuRow(a3, blk.m0 + 3u, blk.n0, m);
  storeCpuRow(a4, blk.m0 + 4u, blk.n0, m);
  storeCpuRow(a5, blk.m0 + 5u, blk.n0, m);
  storeCpuRow(a6, blk.m0 + 6u, blk.n0, m);
  storeCpuRow(a7, blk.m0 + 7u, blk.n0, m);
  storeCpuRow(a8, blk.m0 + 8u, blk.n0, m);
  storeCpuRow(a9, blk.m0 + 9u, blk.n0, m);
  storeCpuRow(a10, blk.m0 + 10u, blk.n0, m);
  storeCpuRow(a11, blk.m0 + 11u, blk.n0, m);
  storeCpuRow(a12, blk.m0 + 12u, blk.n0, m);
  storeCpuRow(a13, blk.m0 + 13u, blk.n0, m);
  storeCpuRow(a14, blk.m0 + 14u, blk.n0, m);
  storeCpuRow(a15, blk.m0 + 15u, blk.n0, m);
}
