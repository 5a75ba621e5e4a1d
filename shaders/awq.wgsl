// awq — the error terms of AWQ's scale and clipping searches
// (src/lab/methods/awq.ts; CPU reference: src/core/quant/awq.ts).
//
//   fakeQuantDelta: delta[n, k] = Q(w[n, k] · s[k]) / s[k] − w[n, k]
//       Q = the packed format's round-to-nearest (src/core/quant/rtn.ts) per
//       (row, group) of the scaled row, its range shrunk by `ratio`:
//       lo = min(ratio · min, 0), hi = max(ratio · max, 0) (symmetric: ±max(|lo|, hi)),
//       scale = (hi − lo) / (2^b − 1), zero = clamp(round(−lo / scale)),
//       q = clamp(round(v / scale) + zero), Q(v) = (q − zero) · scale.
//       WGSL's round() is round-half-to-even, as torch.round and rtn.ts.
//   sumSquares:    partial[offset + wg] = Σ y[i]² over the i this workgroup visits
//       (64 workgroups × 64 invocations stride through y; the CPU adds the 64 partials)
//   groupError:    err[n, g] = Σ_t (Σ_{j < G} x[t, g·G + j] · delta[n, g·G + j])²
//       the output error of one (row, group) alone — what the clipping search
//       minimizes per (row, group).
//
// Layouts (f32, row-major): w, delta [n, k]; s [k]; y [count]; x [tokens, k];
// err [n, k / G].
//
// Bindings (group 0): 0 params: uniform Params
//   fakeQuantDelta: 1 w   2 s   3 delta (read_write)
//   sumSquares:     1 y   3 partial (read_write)
//   groupError:     4 x   5 delta (both as vec4: K and G multiples of 4)   3 err (read_write)
//
// Dispatch: 64 invocations per workgroup, 2D (wid.x + wid.y · num_workgroups.x);
// fakeQuantDelta: one invocation per (row, group), groups of a row adjacent;
// groupError: one per (4 rows, group); sumSquares: exactly 64 workgroups. Barrier-free but for the
// final 64-wide reduction of sumSquares.

struct Params {
  n: u32,
  k: u32,
  groupSize: u32,
  bits: u32,
  symmetric: u32,
  ratio: f32,
  // sumSquares: element count and where the partials go; groupError: tokens
  count: u32,
  offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> d4: array<vec4<f32>>;

fn flatIndex(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn fakeQuantDelta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let groups = params.k / params.groupSize;
  let id = flatIndex(wid, nwg, lid);
  if (id >= params.n * groups) { return; }
  let row = id / groups;
  let g = id % groups;
  let start = row * params.k + g * params.groupSize;
  let col0 = g * params.groupSize;
  var lo = 3.4e38;
  var hi = -3.4e38;
  for (var j = 0u; j < params.groupSize; j++) {
    let v = a[start + j] * b[col0 + j];
    lo = min(lo, v);
    hi = max(hi, v);
  }
  let maxq = f32((1u << params.bits) - 1u);
  var xmin = min(params.ratio * lo, 0.0);
  var xmax = max(params.ratio * hi, 0.0);
  if (params.symmetric != 0u) {
    xmax = max(abs(xmin), xmax);
    xmin = -xmax;
  }
  if (xmax == xmin) {
    xmin = -1.0;
    xmax = 1.0;
  }
  let scale = (xmax - xmin) / maxq;
  var zero = f32(1u << (params.bits - 1u));
  if (params.symmetric == 0u) {
    zero = clamp(round(-xmin / scale), 0.0, maxq);
  }
  for (var j = 0u; j < params.groupSize; j++) {
    let w = a[start + j];
    let s = b[col0 + j];
    let q = clamp(round((w * s) / scale) + zero, 0.0, maxq);
    out[start + j] = ((q - zero) * scale) / s - w;
  }
}

var<workgroup> partials: array<f32, 64>;

@compute @workgroup_size(64)
fn sumSquares(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  for (var i = wid.x * 64u + lid; i < params.count; i += 4096u) {
    let v = a[i];
    sum += v * v;
  }
  partials[lid] = sum;
  for (var width = 32u; width > 0u; width >>= 1u) {
    workgroupBarrier();
    if (lid < width) { partials[lid] += partials[lid + width]; }
  }
  if (lid == 0u) { out[params.offset + wid.x] = partials[0]; }
}

@compute @workgroup_size(64)
fn groupError(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // one invocation: rows n0 … n0 + 3 of one group, x and delta read as vec4
  let groups = params.k / params.groupSize;
  let quads = (params.n + 3u) / 4u;
  let id = flatIndex(wid, nwg, lid);
  if (id >= quads * groups) { return; }
  let n0 = (id / groups) * 4u;
  let g = id % groups;
  let k4 = params.k / 4u;
  let c0 = g * params.groupSize / 4u;
  let width = params.groupSize / 4u;
  // rows past n read row n − 1 again and are not written
  let r1 = min(n0 + 1u, params.n - 1u);
  let r2 = min(n0 + 2u, params.n - 1u);
  let r3 = min(n0 + 3u, params.n - 1u);
  var err = vec4<f32>(0.0);
  for (var t = 0u; t < params.count; t++) {
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < width; j++) {
      let xv = x4[t * k4 + c0 + j];
      acc += vec4<f32>(
        dot(xv, d4[n0 * k4 + c0 + j]),
        dot(xv, d4[r1 * k4 + c0 + j]),
        dot(xv, d4[r2 * k4 + c0 + j]),
        dot(xv, d4[r3 * k4 + c0 + j]));
    }
    err += acc * acc;
  }
  for (var i = 0u; i < 4u; i++) {
    if (n0 + i < params.n) { out[(n0 + i) * groups + g] = err[i]; }
  }
}
