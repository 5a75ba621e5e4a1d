// w4a4 — Atom-style W4A4 with int8 outlier channels (src/core/quant/atom.ts
// is the CPU reference; its header defines the layout):
//
//   quantizeRows:  x[m, perm[j]] → per row: O outlier channels in int8 (scale max|·|/127),
//                  the other K−O in int4 groups of G (scale max|·|/7 per group), dynamic per token
//                  (scales as max · f32(1/127) and max · f32(1/7): a product, rounded the same on every adapter)
//   matmul:        y[m, n] = xs[m,0]·ws[n,0]·Σ_{j<O} qx·qw + Σ_g xs[m,1+g]·ws[n,1+g]·Σ_{j∈g} qx·qw (+ bias[n])
//                  every Σ over codes an exact int32 sum; both parts in one kernel
//
// A row (of activations or weights): `codes` [rowWords = O/4 + (K−O)/8] — int8 words (4 codes,
// byte j mod 4), then int4 words (8 codes, nibble j mod 8, two's complement); `scales`
// [1 + groups] f32, the outlier scale first. Int4 pairs are multiplied as int8 through dot4
// after spreading nibbles 0,2,4,6 and 1,3,5,7 of a word to sign-extended bytes.
// dot4 is WGSL's dot4I8Packed, or dot4Plain where the adapter lacks the
// packed_4x8_integer_dot_product language feature (the TypeScript side,
// src/gpu/w4a4-linear.ts, swaps the body: the one template step of this file).
//
// Bindings (group 0):
//   quantizeRows: 0 params   1 x [M, K] f32   2 perm [K] u32   3 xCodesOut [M, rowWords]   4 xScalesOut [M, 1+groups]
//   matmul:       0 params   5 xCodes   6 xScales   7 wCodes [N, rowWords]   8 wScales [N, 1+groups]
//                 9 bias [N] (anything when hasBias = 0)   10 y [M, N]
// M is the bound size of the scales divided by 1 + groups. One invocation per
// item, 64 per workgroup, 2-D dispatch (item = gid.x + gid.y · nwg.x · 64):
// quantizeRows a row of x, matmul a row m and four outputs n … n+3.
struct Params { n: u32, k: u32, outliers: u32, groupSize: u32, hasBias: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
@group(0) @binding(3) var<storage, read_write> xCodesOut: array<u32>;
@group(0) @binding(4) var<storage, read_write> xScalesOut: array<f32>;
@group(0) @binding(5) var<storage, read> xCodes: array<u32>;
@group(0) @binding(6) var<storage, read> xScales: array<f32>;
@group(0) @binding(7) var<storage, read> wCodes: array<u32>;
@group(0) @binding(8) var<storage, read> wScales: array<f32>;
@group(0) @binding(9) var<storage, read> bias: array<f32>;
@group(0) @binding(10) var<storage, read_write> y: array<f32>;

fn dot4(a: u32, b: u32) -> i32 {
  return dot4I8Packed(a, b);
}

fn dot4Plain(a: u32, b: u32) -> i32 {
  let va = vec4<i32>(bitcast<i32>(a << 24u), bitcast<i32>(a << 16u), bitcast<i32>(a << 8u), bitcast<i32>(a)) >> vec4<u32>(24u);
  let vb = vec4<i32>(bitcast<i32>(b << 24u), bitcast<i32>(b << 16u), bitcast<i32>(b << 8u), bitcast<i32>(b)) >> vec4<u32>(24u);
  let v = va * vb;
  return v.x + v.y + v.z + v.w;
}

// Nibbles 0, 2, 4, 6 of w as four sign-extended bytes.
fn spread(w: u32) -> u32 {
  let t = w & 0x0F0F0F0Fu;
  return t | (((t & 0x08080808u) >> 3u) * 0xF0u);
}

// Σ of the eight int4 products of words a and b.
fn dot8x4(a: u32, b: u32) -> i32 {
  return dot4(spread(a), spread(b)) + dot4(spread(a >> 4u), spread(b >> 4u));
}

fn groups() -> u32 { return (p.k - p.outliers) / p.groupSize; }
fn rowWords() -> u32 { return p.outliers / 4u + (p.k - p.outliers) / 8u; }

@compute @workgroup_size(64)
fn quantizeRows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let m = gid.x + gid.y * nwg.x * 64u;
  let ns = 1u + groups();
  if (m >= arrayLength(&xScalesOut) / ns) { return; }
  let xb = m * p.k;
  let cb = m * rowWords();
  // outliers: int8
  var amax = 0.0;
  for (var j = 0u; j < p.outliers; j++) { amax = max(amax, abs(x[xb + perm[j]])); }
  var s = 1.0;
  if (amax > 0.0) { s = amax * (1.0 / 127.0); }
  xScalesOut[m * ns] = s;
  for (var w = 0u; w < p.outliers / 4u; w++) {
    var word = 0u;
    for (var i = 0u; i < 4u; i++) {
      let q = i32(clamp(round(x[xb + perm[4u * w + i]] / s), -127.0, 127.0));
      word = word | ((bitcast<u32>(q) & 0xFFu) << (8u * i));
    }
    xCodesOut[cb + w] = word;
  }
  // the rest: int4 groups
  for (var g = 0u; g < groups(); g++) {
    let j0 = p.outliers + g * p.groupSize;
    var gmax = 0.0;
    for (var j = j0; j < j0 + p.groupSize; j++) { gmax = max(gmax, abs(x[xb + perm[j]])); }
    var gs = 1.0;
    if (gmax > 0.0) { gs = gmax * (1.0 / 7.0); }
    xScalesOut[m * ns + 1u + g] = gs;
    for (var w = 0u; w < p.groupSize / 8u; w++) {
      var word = 0u;
      for (var i = 0u; i < 8u; i++) {
        let q = i32(clamp(round(x[xb + perm[j0 + 8u * w + i]] / gs), -7.0, 7.0));
        word = word | ((bitcast<u32>(q) & 0xFu) << (4u * i));
      }
      xCodesOut[cb + p.outliers / 4u + (g * p.groupSize) / 8u + w] = word;
    }
  }
}

@compute @workgroup_size(64)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let item = gid.x + gid.y * nwg.x * 64u;
  let quads = (p.n + 3u) / 4u;
  let ns = 1u + groups();
  if (item >= (arrayLength(&xScales) / ns) * quads) { return; }
  let m = item / quads;
  let n0 = (item % quads) * 4u;
  let rw = rowWords();
  // rows past N repeat the last one (in bounds, never written)
  let rows = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(p.n - 1u));
  let wb = rows * rw;
  let sb = rows * ns;
  let xb = m * rw;
  let xs = m * ns;
  var acc = vec4<i32>(0);
  for (var w = 0u; w < p.outliers / 4u; w++) {
    let a = xCodes[xb + w];
    acc += vec4<i32>(dot4(a, wCodes[wb.x + w]), dot4(a, wCodes[wb.y + w]), dot4(a, wCodes[wb.z + w]), dot4(a, wCodes[wb.w + w]));
  }
  var sum = vec4<f32>(acc) * xScales[xs] * vec4<f32>(wScales[sb.x], wScales[sb.y], wScales[sb.z], wScales[sb.w]);
  let wpg = p.groupSize / 8u;
  for (var g = 0u; g < groups(); g++) {
    var ga = vec4<i32>(0);
    let w0 = p.outliers / 4u + g * wpg;
    for (var w = w0; w < w0 + wpg; w++) {
      let a = xCodes[xb + w];
      ga += vec4<i32>(dot8x4(a, wCodes[wb.x + w]), dot8x4(a, wCodes[wb.y + w]), dot8x4(a, wCodes[wb.z + w]), dot8x4(a, wCodes[wb.w + w]));
    }
    let i = 1u + g;
    sum += vec4<f32>(ga) * xScales[xs + i] * vec4<f32>(wScales[sb.x + i], wScales[sb.y + i], wScales[sb.z + i], wScales[sb.w + i]);
  }
  for (var i = 0u; i < 4u; i++) {
    let n = n0 + i;
    if (n < p.n) {
      var v = sum[i];
      if (p.hasBias != 0u) { v += bias[n]; }
      y[m * p.n + n] = v;
    }
  }
}
