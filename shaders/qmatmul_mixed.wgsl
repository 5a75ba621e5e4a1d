// qmatmul_mixed — the scatter step of a mixed-precision linear layer
// (src/gpu/mixed-linear.ts; layout in src/core/quant/mixllm.ts). The layer's
// rows live in two packed blocks (high-bit and low-bit rows); each block runs
// through the ordinary packed kernels (qmatmul.wgsl) into its own output
// [M, rows of the block]; this kernel puts every column where it belongs:
//
//   y[m, rows[r]] = r < highCount ? yHigh[m, r] : yLow[m, r − highCount]
//
// Bindings (group 0):
//   0 uniform  params { n, highCount }
//   1 storage  yHigh array<f32> [M, highCount]   (anything when highCount = 0)
//   2 storage  yLow  array<f32> [M, n − highCount] (anything when that is 0)
//   3 storage  rows  array<u32> [n] output position of each packed row
//   4 storage  y     array<f32> [M, n] (read_write; M = its bound size / n)
// One invocation per element of y, 64 per workgroup, 2-D dispatch
// (index = gid.x + gid.y · nwg.x · 64).
struct Params { n: u32, highCount: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> yHigh: array<f32>;
@group(0) @binding(2) var<storage, read> yLow: array<f32>;
@group(0) @binding(3) var<storage, read> rows: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= arrayLength(&y)) { return; }
  let m = i / p.n;
  let r = i % p.n;
  let lowCount = p.n - p.highCount;
  var v: f32;
  if (r < p.highCount) {
    v = yHigh[m * p.highCount + r];
  } else {
    v = yLow[m * lowCount + (r - p.highCount)];
  }
  y[m * p.n + rows[r]] = v;
}
