// Embedding gather: x[m, :] = tokens[ids[m], :] (+ positions[pastLen + m, :] when learned).
//
// Bindings (group 0):
//   0 uniform  params { rows: u32 (M), dim: u32 (D), pastLen: u32, usePositions: u32 }
//   1 storage  ids       array<u32>  [M]
//   2 storage  tokens    array<f32>  [vocab, D] row-major
//   3 storage  positions array<f32>  [maxPositions, D] (a 1-element dummy when unused)
//   4 storage  x (out)   array<f32>  [M, D]
// One invocation per output element; workgroups tile the flat index M·D in 2-D
// (x + y·65535·256) so large M·D stay under the dispatch limit.
struct Params { rows: u32, dim: u32, pastLen: u32, usePositions: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> tokens: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.rows * p.dim) { return; }
  let m = i / p.dim;
  let d = i % p.dim;
  var v = tokens[ids[m] * p.dim + d];
  if (p.usePositions != 0u) {
    v = v + positions[(p.pastLen + m) * p.dim + d];
  }
  x[i] = v;
}
