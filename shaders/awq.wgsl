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
//   groupError:     1 x   2 delta   3 err (read_write)
//
// Dispatch: 64 invocations per workgroup, 2D (wid.x + wid.y · num_workgroups.x);
// fakeQuantDelta and groupError: one invocation per (row, group), groups of a
// row adjacent; sumSquares: exactly 64 workgroups. Barrier-free but for the
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
  let groups = params.k / params.groupSize;
  let id = flatIndex(wid, nwg, lid);
  if (id >= params.n * groups) { return; }
  let row = id / groups;
  let g = id % groups;
  let d0 = row * params.k + g * params.groupSize;
  let col0 = g * params.groupSize;
  var err = 0.0;
  for (var t = 0u; t < params.count; t++) {
    let x0 = t * params.k + col0;
    var dot = 0.0;
    for (var j = 0u; j < params.groupSize; j++) {
      dot += a[x0 + j] * b[d0 + j];
    }
    err += dot * dot;
  }
  out[id] = err;
}
