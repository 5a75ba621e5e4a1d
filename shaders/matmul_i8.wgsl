// matmul_i8 — W8A8: dynamic per-token int8 activations times per-channel int8
// weights, accumulated in 32-bit integers (src/core/quant/smoothquant.ts is
// the CPU reference of both steps):
//
//   quantizeRows:  xScale[m] = max_k |x[m, k]| · f32(1/127) (1 when 0),  qx = clamp(round(x / xScale), −127, 127)
//   matmul:        y[m, n] = f32(Σ_k qx[m, k] · qw[n, k]) · xScale[m] · wScale[n] (+ bias[n])
//
// Layout: codes are signed bytes packed four to a u32 (code k in byte k mod 4
// of word ⌊k/4⌋), rows of K/4 words; K is a multiple of 4. The integer dot of
// four byte pairs is WGSL's dot4I8Packed where the adapter has the
// packed_4x8_integer_dot_product language feature; without it the TypeScript
// side (src/gpu/w8a8-linear.ts) swaps the body of dot4 for dot4Plain — the one
// template step of this file. The int32 sum is exact (|Σ| ≤ K · 127² < 2^31
// for K < 133,000), so both give identical results.
//
// Bindings (group 0):
//   quantizeRows: 0 params   1 x: array<f32> [M, K]   2 xCodes (write) [M, K/4]   3 xScales (write) [M]
//   matmul:       0 params   4 xCodes [M, K/4]   5 xScales [M]   6 wCodes [N, K/4]   7 wScales [N]
//                 8 bias [N] (anything when hasBias = 0)   9 y (write) [M, N]
// Both: one invocation per item, 64 per workgroup, 2-D dispatch (item = gid.x + gid.y · nwg.x · 64);
// quantizeRows: an item is a row of x; matmul: a row m and four outputs n … n+3.
// M is not a parameter: it is the bound size of xScales / xScalesOut (the caller binds exactly M floats),
// so one uniform serves dispatches of any M recorded into one pass.
struct Params { unused: u32, n: u32, k: u32, hasBias: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xCodesOut: array<u32>;
@group(0) @binding(3) var<storage, read_write> xScalesOut: array<f32>;
@group(0) @binding(4) var<storage, read> xCodes: array<u32>;
@group(0) @binding(5) var<storage, read> xScales: array<f32>;
@group(0) @binding(6) var<storage, read> wCodes: array<u32>;
@group(0) @binding(7) var<storage, read> wScales: array<f32>;
@group(0) @binding(8) var<storage, read> bias: array<f32>;
@group(0) @binding(9) var<storage, read_write> y: array<f32>;

// Σ of the four products of signed bytes of a and b.
fn dot4(a: u32, b: u32) -> i32 {
  return dot4I8Packed(a, b);
}

fn dot4Plain(a: u32, b: u32) -> i32 {
  let va = vec4<i32>(bitcast<i32>(a << 24u), bitcast<i32>(a << 16u), bitcast<i32>(a << 8u), bitcast<i32>(a)) >> vec4<u32>(24u);
  let vb = vec4<i32>(bitcast<i32>(b << 24u), bitcast<i32>(b << 16u), bitcast<i32>(b << 8u), bitcast<i32>(b)) >> vec4<u32>(24u);
  let v = va * vb;
  return v.x + v.y + v.z + v.w;
}

@compute @workgroup_size(64)
fn quantizeRows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let m = gid.x + gid.y * nwg.x * 64u;
  if (m >= arrayLength(&xScalesOut)) { return; }
  let base = m * p.k;
  var amax = 0.0;
  for (var j = 0u; j < p.k; j++) { amax = max(amax, abs(x[base + j])); }
  var scale = 1.0;
  if (amax > 0.0) { scale = amax * (1.0 / 127.0); }
  xScalesOut[m] = scale;
  for (var w = 0u; w < p.k / 4u; w++) {
    let q = vec4<i32>(clamp(round(vec4<f32>(x[base + 4u * w], x[base + 4u * w + 1u], x[base + 4u * w + 2u], x[base + 4u * w + 3u]) / scale), vec4<f32>(-127.0), vec4<f32>(127.0)));
    let b = bitcast<vec4<u32>>(q) & vec4<u32>(0xFFu);
    xCodesOut[m * (p.k / 4u) + w] = b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
  }
}

@compute @workgroup_size(64)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let item = gid.x + gid.y * nwg.x * 64u;
  let quads = (p.n + 3u) / 4u;
  if (item >= arrayLength(&xScales) * quads) { return; }
  let m = item / quads;
  let n0 = (item % quads) * 4u;
  let words = p.k / 4u;
  // rows past N repeat the last one (in bounds, never written)
  let r = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(p.n - 1u)) * words;
  var acc = vec4<i32>(0);
  let xb = m * words;
  for (var w = 0u; w < words; w++) {
    let a = xCodes[xb + w];
    acc += vec4<i32>(dot4(a, wCodes[r.x + w]), dot4(a, wCodes[r.y + w]), dot4(a, wCodes[r.z + w]), dot4(a, wCodes[r.w + w]));
  }
  let xs = xScales[m];
  for (var i = 0u; i < 4u; i++) {
    let n = n0 + i;
    if (n < p.n) {
      var v = f32(acc[i]) * xs * wScales[n];
      if (p.hasBias != 0u) { v += bias[n]; }
      y[m * p.n + n] = v;
    }
  }
}
