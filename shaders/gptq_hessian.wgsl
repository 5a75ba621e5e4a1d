// gptq_hessian — GPTQ's Hessian accumulation: H += XᵀX.
//
//   H[i, j] += Σ_r X[rowOffset + r, i] · X[rowOffset + r, j]     r < rows
//
// Layouts (f32, row-major): x [*, K] (rows rowOffset … rowOffset + rows − 1
// are read), h [K, K] (symmetric, both triangles kept).
//
// Bindings (group 0): 0 x: array<f32>   1 h: array<f32> (read_write)
//                     2 params: uniform Params
//
// Entry point `hessian`: one workgroup of 256 invocations per 64×64 tile of
// H on or above the diagonal (ti ≤ tj; ⌈K/64⌉·(⌈K/64⌉+1)/2 workgroups, 2D
// dispatch numbered wid.x + wid.y · num_workgroups.x). Rows of X go through
// workgroup memory 32 at a time; each invocation sums a 4×4 block. A tile
// above the diagonal also writes its mirror below it, so H stays symmetric at
// half the work; a diagonal tile writes only its own elements (each once).

const T: u32 = 64u;
const BK: u32 = 32u;
const WG: u32 = 256u;

struct Params {
  k: u32,
  rows: u32,
  rowOffset: u32,
  tiles: u32,  // ⌈K / 64⌉
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> h: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

// [BK rows of X][64 columns], four consecutive columns per vec4.
var<workgroup> xa: array<vec4<f32>, 512>;
var<workgroup> xb: array<vec4<f32>, 512>;

// Tile (ti, tj), ti ≤ tj, of the id-th upper-triangle tile (column by column).
fn upperTile(id: u32) -> vec2<u32> {
  var a = u32((sqrt(8.0 * f32(id) + 1.0) - 1.0) * 0.5);
  while (a * (a + 1u) / 2u > id) { a -= 1u; }
  while ((a + 1u) * (a + 2u) / 2u <= id) { a += 1u; }
  return vec2<u32>(id - a * (a + 1u) / 2u, a);
}

@compute @workgroup_size(WG)
fn hessian(@builtin(local_invocation_index) lid: u32,
           @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let id = wid.x + wid.y * nwg.x;
  if (id >= params.tiles * (params.tiles + 1u) / 2u) { return; }
  let tile = upperTile(id);
  let i0 = tile.x * T;
  let j0 = tile.y * T;
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc: array<vec4<f32>, 4>;
  for (var r0 = 0u; r0 < params.rows; r0 += BK) {
    for (var e = lid; e < BK * T; e += WG) {
      let rr = e / T;
      let cc = e % T;
      let row = r0 + rr;
      var va = 0.0;
      var vb = 0.0;
      if (row < params.rows) {
        let base = (params.rowOffset + row) * k;
        if (i0 + cc < k) { va = x[base + i0 + cc]; }
        if (j0 + cc < k) { vb = x[base + j0 + cc]; }
      }
      xa[rr * 16u + cc / 4u][cc % 4u] = va;
      xb[rr * 16u + cc / 4u][cc % 4u] = vb;
    }
    workgroupBarrier();
    for (var rr = 0u; rr < BK; rr++) {
      let a = xa[rr * 16u + ty];
      let b = xb[rr * 16u + tx];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }
  let diagonal = tile.x == tile.y;
  for (var a = 0u; a < 4u; a++) {
    let gi = i0 + ty * 4u + a;
    if (gi >= k) { continue; }
    for (var c = 0u; c < 4u; c++) {
      let gj = j0 + tx * 4u + c;
      if (gj >= k) { continue; }
      let v = acc[a][c];
      h[gi * k + gj] += v;
      if (!diagonal) { h[gj * k + gi] += v; }
    }
  }
}
