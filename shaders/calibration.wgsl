// calibration — what calibrated methods collect from a linear layer's input
// while the model runs on calibration samples (see src/lab/methods/calibration.ts).
//
//   absSum:     stat[c] += Σ_r |x[r, c]|                 r < rows, c < k
//   gatherRows: dst[dstRow + j, c] = x[first + j·stride, c]   j < count, c < k
//
// Layouts (f32, row-major): x [rows, k] (one sample's input of a group of
// linears), stat [k] (accumulated over samples: the caller divides by the
// token count), dst [capacity, k] (rows subsampled from every sample).
//
// Bindings (group 0): 0 params: uniform Params   1 x: array<f32>
//   2 out: array<f32> (read_write) — stat for absSum, dst for gatherRows
//
// One invocation per channel (absSum: it walks the rows, consecutive
// invocations read consecutive floats) or per element (gatherRows);
// 64 invocations per workgroup, dispatched 2D (wid.x + wid.y · num_workgroups.x).

struct Params {
  rows: u32,
  k: u32,
  // gatherRows: the rows taken are first + j·stride, j < count, written from dstRow on
  first: u32,
  stride: u32,
  count: u32,
  dstRow: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn flatIndex(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn absSum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = flatIndex(wid, nwg, lid);
  if (c >= params.k) { return; }
  var sum = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    sum += abs(x[r * params.k + c]);
  }
  out[c] += sum;
}

@compute @workgroup_size(64)
fn gatherRows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= params.count * params.k) { return; }
  let j = i / params.k;
  let c = i % params.k;
  out[(params.dstRow + j) * params.k + c] = x[(params.first + j * params.stride) * params.k + c];
}
