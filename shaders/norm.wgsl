// Row normalization, one workgroup per row of x[M, D]:
//   RMSNorm   (kind 0): y = x / sqrt(mean(x²) + eps) · weight
//   LayerNorm (kind 1): y = (x − mean(x)) / sqrt(var(x) + eps) · weight + bias   (biased variance)
// Statistics are accumulated in f32 with a tree reduction in workgroup memory
// over WG invocations per row.
//
// Bindings (group 0):
//   0 uniform  params { rows: u32, dim: u32, eps: f32, kind: u32 }
//   1 storage  x      array<f32> [M, D]  (read)
//   2 storage  weight array<f32> [D]
//   3 storage  bias   array<f32> [D]     (a dummy for RMSNorm)
//   4 storage  y      array<f32> [M, D]  (write; may not alias x)
struct Params { rows: u32, dim: u32, eps: f32, kind: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Invocations per row: 256 on GPUs; small on CPU implementations (SwiftShader),
// where every workgroup barrier switches between all invocations' fibers.
override WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

fn reduceSum(t: u32, value: f32) -> f32 {
  partial[t] = value;
  workgroupBarrier();
  var stride = WG / 2u;
  loop {
    if (stride == 0u) { break; }
    if (t < stride) { partial[t] = partial[t] + partial[t + stride]; }
    workgroupBarrier();
    stride = stride / 2u;
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let t = lid.x;
  let base = row * p.dim;
  let n = f32(p.dim);
  var mean = 0.0;
  if (p.kind == 1u) {
    var s = 0.0;
    for (var d = t; d < p.dim; d = d + WG) { s = s + x[base + d]; }
    mean = reduceSum(t, s) / n;
  }
  var sq = 0.0;
  for (var d = t; d < p.dim; d = d + WG) {
    let c = x[base + d] - mean;
    sq = sq + c * c;
  }
  let inv = 1.0 / sqrt(reduceSum(t, sq) / n + p.eps);
  for (var d = t; d < p.dim; d = d + WG) {
    var v = (x[base + d] - mean) * inv * weight[d];
    if (p.kind == 1u) { v = v + bias[d]; }
    y[base + d] = v;
  }
}
