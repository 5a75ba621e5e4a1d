// qgemv — the decode GEMV of packed layers: y = x · Ŵᵀ (+ bias) for a few rows
// of x, Ŵ dequantized on the fly. Same packed format, bindings and Params as
// qmatmul.wgsl (see there); this file is the bandwidth-bound hot path.
//
// Shape of the work. A workgroup of WG invocations holds WG / TPR teams; a
// team of TPR lanes owns ROWS consecutive rows of Ŵ. Lanes walk the rows'
// packed codes in units of one vec4<u32> (16 bytes: 32 codes at 4 bits, 16 at
// 8, 64 at 2; three vec4 = 128 codes at 3 bits), lane after lane, so a
// subgroup reads whole 512-byte runs of a row per load. Each unit's x values
// come from workgroup memory, where the workgroup staged x in chunks of XC
// inputs: one coalesced read of x per workgroup instead of one 128-byte
// stride per lane, padded (one vec4 in nine unused) so that the lanes' vec4
// reads hit distinct banks. One x unit serves the team's ROWS rows.
//
// Dequantizing with few instructions: a code q at bit offset s (s + width ≤ 23)
// of a word, masked in place and OR-ed into the exponent bits of 2^23, is the
// float 2^23 + q·2^s; subtracting 2^23 + zero·2^s leaves (q − zero)·2^s exactly,
// and x was staged pre-multiplied by 2^−s (exact: a power of two), so the
// product is exactly (q − zero)·x as the reference computes it. Per code: one
// AND/OR, one subtraction, one multiply-add — no shifts, no int→float
// conversion. Codes of the upper half-word use the same masks after one shift
// of the whole word. (3-bit codes straddle words; they use per-code shifts.)
//
// The team's partial sums are reduced by the text substituted for
// `REDUCE_IMPL` (src/gpu/qlinear.ts `gemvSource`): subgroup shuffles where the
// adapter has `subgroups` and its subgroups hold a whole team, else a tree in
// workgroup memory. WG, ROWS and XC are substituted too (constants sizing
// arrays); BITS, GROUP, SYMMETRIC, HAS_BIAS and TPR are override constants.
//
// Rows past N repeat the last row (never written). Units past K (row padding,
// when K is not a multiple of the unit) read codes that are finite garbage at
// worst and multiply x staged as zeros there.

override BITS: u32 = 4u;
override GROUP: u32 = 128u;
override SYMMETRIC: bool = false;
override HAS_BIAS: bool = false;
override TPR: u32 = 32u;
// 4 bits: each lane loads the codes of its next unit before decoding the current one
override PREFETCH: bool = false;

const WG: u32 = 256u;
const ROWS: u32 = 4u;
const XC: u32 = 2048u;
const XV: u32 = XC / 4u;
const MAGIC: u32 = 0x4B000000u; // f32 bits of 2^23
const MAGICF: f32 = 8388608.0;

struct Params {
  n: u32,
  k: u32,
  groups: u32,
  rowVec4: u32,
  bits: u32,
  groupSize: u32,
  symmetric: u32,
  hasBias: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read> zeros: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> xs: array<vec4<f32>, XV + XV / 8u>;

fn xv(v: u32) -> vec4<f32> {
  return xs[v + (v >> 3u)];
}

// Codes per unit (one vec4 of codes; three at 3 bits).
fn unitCodes() -> u32 {
  if (BITS == 3u) { return 128u; }
  return 128u / BITS;
}

// The power-of-two factors x is staged with, by vec4 index (see the header).
fn prescale(v: u32) -> vec4<f32> {
  if (BITS == 4u) { return vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625); }
  if (BITS == 8u) { return vec4<f32>(1.0, 0.00390625, 1.0, 0.00390625); }
  if (BITS == 2u) {
    if ((v & 1u) == 0u) { return vec4<f32>(1.0, 0.25, 0.0625, 0.015625); }
    return vec4<f32>(0.00390625, 0.0009765625, 0.000244140625, 0.00006103515625);
  }
  return vec4<f32>(1.0);
}

fn zeroPoint(i: u32) -> f32 {
  if (SYMMETRIC) { return f32(1u << (BITS - 1u)); }
  return f32((zeros[i >> 2u] >> ((i & 3u) * 8u)) & 0xFFu);
}

// (q − zero)·2^s for the four codes of `w` under masks `m` (q·2^s < 2^23).
fn deq(w: u32, m: vec4<u32>, cz: vec4<f32>) -> vec4<f32> {
  return bitcast<vec4<f32>>((vec4<u32>(w) & m) | vec4<u32>(MAGIC)) - cz;
}

// 3 bits: q − zero for four codes of `w` at bit offsets `s` (zm = 2^23 + zero).
fn codes3(w: u32, s: vec4<u32>, zm: f32) -> vec4<f32> {
  return bitcast<vec4<f32>>(((vec4<u32>(w) >> s) & vec4<u32>(7u)) | vec4<u32>(MAGIC)) - vec4<f32>(zm);
}

fn dot3x8(a: u32, xa: vec4<f32>, xb: vec4<f32>, zm: f32) -> vec4<f32> {
  return codes3(a, vec4<u32>(0u, 3u, 6u, 9u), zm) * xa + codes3(a, vec4<u32>(12u, 15u, 18u, 21u), zm) * xb;
}

// Word i (0..11) of a 3-bit unit held as three vec4.
fn word3(c0: vec4<u32>, c1: vec4<u32>, c2: vec4<u32>, i: u32) -> u32 {
  if (i < 4u) { return c0[i]; }
  if (i < 8u) { return c1[i - 4u]; }
  return c2[i - 8u];
}

REDUCE_IMPL

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
  var cbase: array<u32, ROWS>;
  var gbase: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    let row = min(row0 + r, n - 1u);
    cbase[r] = row * params.rowVec4;
    gbase[r] = row * params.groups;
  }
  let uc = unitCodes();
  let kPad = (k + uc - 1u) / uc * uc;
  let xRow = k / 4u;

  for (var mi = 0u; mi < m; mi++) {
    var acc: array<vec4<f32>, ROWS>;
    for (var r = 0u; r < ROWS; r++) { acc[r] = vec4<f32>(0.0); }
    for (var c0 = 0u; c0 < kPad; c0 += XC) {
      let cl = min(XC, kPad - c0);
      workgroupBarrier();
      for (var v = lid; v < cl / 4u; v += WG) {
        let kk = c0 + 4u * v;
        var val = vec4<f32>(0.0);
        if (kk < k) { val = x[mi * xRow + kk / 4u] * prescale(v); }
        xs[v + (v >> 3u)] = val;
      }
      workgroupBarrier();
      let u0 = c0 / uc;
      let u1 = (c0 + cl) / uc;
      var cn: array<vec4<u32>, ROWS>;
      if (BITS == 4u && PREFETCH) {
        let first = min(u0 + lane, params.rowVec4 - 1u);
        for (var r = 0u; r < ROWS; r++) { cn[r] = codes[cbase[r] + first]; }
      }
      for (var u = u0 + lane; u < u1; u += TPR) {
        let vb = (u - u0) * (uc / 4u);  // first x vec4 of the unit in the chunk
        if (BITS == 4u) {
          let g = (u * 32u) / GROUP;
          let x0 = xv(vb); let x1 = xv(vb + 1u); let x2 = xv(vb + 2u); let x3 = xv(vb + 3u);
          let x4 = xv(vb + 4u); let x5 = xv(vb + 5u); let x6 = xv(vb + 6u); let x7 = xv(vb + 7u);
          let mk = vec4<u32>(0xFu, 0xF0u, 0xF00u, 0xF000u);
          var cc: array<vec4<u32>, ROWS>;
          if (PREFETCH) {
            let nu = min(u + TPR, params.rowVec4 - 1u);
            for (var r = 0u; r < ROWS; r++) { cc[r] = cn[r]; cn[r] = codes[cbase[r] + nu]; }
          } else {
            for (var r = 0u; r < ROWS; r++) { cc[r] = codes[cbase[r] + u]; }
          }
          for (var r = 0u; r < ROWS; r++) {
            let c = cc[r];
            let gi = gbase[r] + g;
            let cz = vec4<f32>(MAGICF) + zeroPoint(gi) * vec4<f32>(1.0, 16.0, 256.0, 4096.0);
            var t = deq(c.x, mk, cz) * x0 + deq(c.x >> 16u, mk, cz) * x1;
            t += deq(c.y, mk, cz) * x2 + deq(c.y >> 16u, mk, cz) * x3;
            t += deq(c.z, mk, cz) * x4 + deq(c.z >> 16u, mk, cz) * x5;
            t += deq(c.w, mk, cz) * x6 + deq(c.w >> 16u, mk, cz) * x7;
            acc[r] += t * scales[gi];
          }
        } else if (BITS == 8u) {
          let g = (u * 16u) / GROUP;
          let x0 = xv(vb); let x1 = xv(vb + 1u); let x2 = xv(vb + 2u); let x3 = xv(vb + 3u);
          let mk = vec4<u32>(0xFFu, 0xFF00u, 0xFFu, 0xFF00u);
          for (var r = 0u; r < ROWS; r++) {
            let c = codes[cbase[r] + u];
            let gi = gbase[r] + g;
            let cz = vec4<f32>(MAGICF) + zeroPoint(gi) * vec4<f32>(1.0, 256.0, 1.0, 256.0);
            var t = bitcast<vec4<f32>>((vec4<u32>(c.x, c.x, c.x >> 16u, c.x >> 16u) & mk) | vec4<u32>(MAGIC)) - cz;
            t *= x0;
            t += (bitcast<vec4<f32>>((vec4<u32>(c.y, c.y, c.y >> 16u, c.y >> 16u) & mk) | vec4<u32>(MAGIC)) - cz) * x1;
            t += (bitcast<vec4<f32>>((vec4<u32>(c.z, c.z, c.z >> 16u, c.z >> 16u) & mk) | vec4<u32>(MAGIC)) - cz) * x2;
            t += (bitcast<vec4<f32>>((vec4<u32>(c.w, c.w, c.w >> 16u, c.w >> 16u) & mk) | vec4<u32>(MAGIC)) - cz) * x3;
            acc[r] += t * scales[gi];
          }
        } else if (BITS == 2u) {
          // Two 32-code blocks (words x, y and z, w), each inside one group.
          let mA = vec4<u32>(0x3u, 0xCu, 0x30u, 0xC0u);
          let mB = vec4<u32>(0x300u, 0xC00u, 0x3000u, 0xC000u);
          let x0 = xv(vb); let x1 = xv(vb + 1u); let x2 = xv(vb + 2u); let x3 = xv(vb + 3u);
          let x4 = xv(vb + 4u); let x5 = xv(vb + 5u); let x6 = xv(vb + 6u); let x7 = xv(vb + 7u);
          let x8 = xv(vb + 8u); let x9 = xv(vb + 9u); let x10 = xv(vb + 10u); let x11 = xv(vb + 11u);
          let x12 = xv(vb + 12u); let x13 = xv(vb + 13u); let x14 = xv(vb + 14u); let x15 = xv(vb + 15u);
          let ga = (u * 64u) / GROUP;
          let gb = (u * 64u + 32u) / GROUP;
          for (var r = 0u; r < ROWS; r++) {
            let c = codes[cbase[r] + u];
            let ia = gbase[r] + ga;
            let ib = gbase[r] + gb;
            let za = zeroPoint(ia);
            let zb = zeroPoint(ib);
            let cA = vec4<f32>(MAGICF) + za * vec4<f32>(1.0, 4.0, 16.0, 64.0);
            let cB = vec4<f32>(MAGICF) + za * vec4<f32>(256.0, 1024.0, 4096.0, 16384.0);
            let dA = vec4<f32>(MAGICF) + zb * vec4<f32>(1.0, 4.0, 16.0, 64.0);
            let dB = vec4<f32>(MAGICF) + zb * vec4<f32>(256.0, 1024.0, 4096.0, 16384.0);
            var s = deq(c.x, mA, cA) * x0 + deq(c.x, mB, cB) * x1;
            s += deq(c.x >> 16u, mA, cA) * x2 + deq(c.x >> 16u, mB, cB) * x3;
            s += deq(c.y, mA, cA) * x4 + deq(c.y, mB, cB) * x5;
            s += deq(c.y >> 16u, mA, cA) * x6 + deq(c.y >> 16u, mB, cB) * x7;
            var t = deq(c.z, mA, dA) * x8 + deq(c.z, mB, dB) * x9;
            t += deq(c.z >> 16u, mA, dA) * x10 + deq(c.z >> 16u, mB, dB) * x11;
            t += deq(c.w, mA, dA) * x12 + deq(c.w, mB, dB) * x13;
            t += deq(c.w >> 16u, mA, dA) * x14 + deq(c.w >> 16u, mB, dB) * x15;
            acc[r] += s * scales[ia] + t * scales[ib];
          }
        } else {
          // BITS == 3: three vec4 = four 32-code blocks of three words.
          for (var r = 0u; r < ROWS; r++) {
            let base = cbase[r] + 3u * u;
            let c0 = codes[base];
            let c1 = codes[base + 1u];
            let c2 = codes[base + 2u];
            for (var b = 0u; b < 4u; b++) {
              let gi = gbase[r] + (u * 128u + b * 32u) / GROUP;
              let zm = MAGICF + zeroPoint(gi);
              let a = word3(c0, c1, c2, 3u * b);
              let bb = word3(c0, c1, c2, 3u * b + 1u);
              let cc = word3(c0, c1, c2, 3u * b + 2u);
              let r0 = a & 0xFFFFFFu;
              let r1 = ((a >> 24u) | (bb << 8u)) & 0xFFFFFFu;
              let r2 = ((bb >> 16u) | (cc << 16u)) & 0xFFFFFFu;
              let r3 = cc >> 8u;
              let xb = vb + 8u * b;
              let s = dot3x8(r0, xv(xb), xv(xb + 1u), zm) + dot3x8(r1, xv(xb + 2u), xv(xb + 3u), zm)
                    + dot3x8(r2, xv(xb + 4u), xv(xb + 5u), zm) + dot3x8(r3, xv(xb + 6u), xv(xb + 7u), zm);
              acc[r] += s * scales[gi];
            }
          }
        }
      }
    }

    var sums: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) { sums[r] = dot(acc[r], vec4<f32>(1.0)); }
    let total = reduceTeam(sums, lid, lane);
    if (lane == 0u) {
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
