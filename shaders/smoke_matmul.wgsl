// smoke_matmul.wgsl — C = A · B in f32, tiled through workgroup memory.
// The first kernel of the lab: it exists to prove the path from WGSL source to
// numbers (browser worker, Dawn under Node, the GPU machine), not to be fast.
//
//   C[m, n] = Σ_k A[m, k] · B[k, n]        0 ≤ m < M, 0 ≤ n < N, 0 ≤ k < K
//
// Bindings (group 0):
//   0  a     storage, read         array<f32>  A, M×K row-major: A[m, k] at m·K + k
//   1  b     storage, read         array<f32>  B, K×N row-major: B[k, n] at k·N + n
//   2  c     storage, read_write   array<f32>  C, M×N row-major: C[m, n] at m·N + n
//   3  dims  uniform               Dims { M, N, K, pad }  (16 bytes)
//
// Dispatch: (ceil(N / TILE), ceil(M / TILE), 1) workgroups of TILE×TILE threads.
// Thread (x, y) of workgroup (i, j) owns C[j·TILE + y, i·TILE + x]. The
// workgroup walks K in steps of TILE, staging a TILE×TILE block of A and one of
// B in workgroup memory (2 KiB); elements past M, N or K load as 0, so any
// shape works. Each thread sums its products in k order, one f32 accumulator.

const TILE: u32 = 16u;

struct Dims {
  M: u32,
  N: u32,
  K: u32,
  pad: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

var<workgroup> tileA: array<f32, TILE * TILE>; // tileA[y][k]: A[row, t·TILE + k]
var<workgroup> tileB: array<f32, TILE * TILE>; // tileB[k][x]: B[t·TILE + k, col]

@compute @workgroup_size(TILE, TILE, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let row = wid.y * TILE + lid.y;
  let col = wid.x * TILE + lid.x;
  let steps = (dims.K + TILE - 1u) / TILE;
  var acc = 0.0;
  for (var t = 0u; t < steps; t++) {
    let ka = t * TILE + lid.x; // the column of A this thread stages
    let kb = t * TILE + lid.y; // the row of B this thread stages
    var va = 0.0;
    if (row < dims.M && ka < dims.K) {
      va = a[row * dims.K + ka];
    }
    var vb = 0.0;
    if (kb < dims.K && col < dims.N) {
      vb = b[kb * dims.N + col];
    }
    tileA[lid.y * TILE + lid.x] = va;
    tileB[lid.y * TILE + lid.x] = vb;
    workgroupBarrier();
    for (var k = 0u; k < TILE; k++) {
      acc += tileA[lid.y * TILE + k] * tileB[k * TILE + lid.x];
    }
    workgroupBarrier();
  }
  if (row < dims.M && col < dims.N) {
    c[row * dims.N + col] = acc;
  }
}
