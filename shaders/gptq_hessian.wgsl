// gptq_hessian — GPTQ's Hessian accumulation: H += XᵀX.
//
//   H[i, j] += Σ_r X[rowOffset + r, i] · X[rowOffset + r, j]     r < rows
//
// Layouts (f32, row-major): x [*, K] (rows rowOffset … rowOffset + rows − 1
// are read), h [K, K] (symmetric, both triangles kept).
//
// Bindings (group 0): 0 x: array<f32>   1 h: array<f32> (read_write)
//                     2 params: uniform Params   3 x4: the same x as vec4
//                     (hessianCpu only)
//
// Entry point `hessian`: one workgroup of 256 invocations per 128×128 tile
// of H on or above the diagonal (ti ≤ tj; ⌈K/128⌉·(⌈K/128⌉+1)/2 workgroups,
// 2D dispatch numbered wid.x + wid.y · num_workgroups.x). Rows of X go
// through workgroup memory 16 at a time; each invocation sums an 8×8 block
// (rows 4ty … 4ty+3 and 64+4ty … of the tile, columns likewise with tx), in
// sixteen named vec4 accumulators rather than an array, so that no compiler
// has to prove it can keep them in registers. A tile above the diagonal also
// writes its mirror below it, so H stays symmetric at half the work; a
// diagonal tile writes only its own elements (each once).
//
// Entry point `hessianCpu` (CPU adapters, K % 8 = 0): no workgroup memory and
// no barriers (a CPU driver switches through every invocation at each one);
// one invocation per 8×8 block on or above the diagonal, straight from
// storage with vec4 loads (4 loads per 64 multiply-adds), the block held in
// four mat4x4 values; 64 invocations per workgroup.

const T: u32 = 128u;
const BK: u32 = 16u;
const WG: u32 = 256u;

struct Params {
  k: u32,
  rows: u32,
  rowOffset: u32,
  tiles: u32,  // ⌈K / 128⌉
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> h: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> x4: array<vec4<f32>>;

// [BK rows of X][128 columns], four consecutive columns per vec4.
var<workgroup> xa: array<vec4<f32>, 512>;
var<workgroup> xb: array<vec4<f32>, 512>;

// Tile (ti, tj), ti ≤ tj, of the id-th upper-triangle tile (column by column).
fn upperTile(id: u32) -> vec2<u32> {
  var a = u32((sqrt(8.0 * f32(id) + 1.0) - 1.0) * 0.5);
  while (a * (a + 1u) / 2u > id) { a -= 1u; }
  while ((a + 1u) * (a + 2u) / 2u <= id) { a += 1u; }
  return vec2<u32>(id - a * (a + 1u) / 2u, a);
}

// Adds row gi of an 8×8 block: columns jlo … jlo+3 (lo) and jhi … jhi+3 (hi),
// and their mirrors unless the tile is on the diagonal.
fn addRow(gi: u32, jlo: u32, jhi: u32, lo: vec4<f32>, hi: vec4<f32>, diagonal: bool) {
  let k = params.k;
  if (gi >= k) { return; }
  for (var c = 0u; c < 4u; c++) {
    if (jlo + c < k) {
      h[gi * k + jlo + c] += lo[c];
      if (!diagonal) { h[(jlo + c) * k + gi] += lo[c]; }
    }
    if (jhi + c < k) {
      h[gi * k + jhi + c] += hi[c];
      if (!diagonal) { h[(jhi + c) * k + gi] += hi[c]; }
    }
  }
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
  var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0);
  var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0);
  var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
  var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0);
  var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
  var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0);
  var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);
  for (var r0 = 0u; r0 < params.rows; r0 += BK) {
    // Neighbouring invocations read neighbouring columns and write neighbouring words.
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
      xa[rr * 32u + cc / 4u][cc % 4u] = va;
      xb[rr * 32u + cc / 4u][cc % 4u] = vb;
    }
    workgroupBarrier();
    for (var rr = 0u; rr < BK; rr++) {
      let alo = xa[rr * 32u + ty];
      let ahi = xa[rr * 32u + 16u + ty];
      let blo = xb[rr * 32u + tx];
      let bhi = xb[rr * 32u + 16u + tx];
      c00 += alo.x * blo; c01 += alo.x * bhi;
      c10 += alo.y * blo; c11 += alo.y * bhi;
      c20 += alo.z * blo; c21 += alo.z * bhi;
      c30 += alo.w * blo; c31 += alo.w * bhi;
      c40 += ahi.x * blo; c41 += ahi.x * bhi;
      c50 += ahi.y * blo; c51 += ahi.y * bhi;
      c60 += ahi.z * blo; c61 += ahi.z * bhi;
      c70 += ahi.w * blo; c71 += ahi.w * bhi;
    }
    workgroupBarrier();
  }
  let diagonal = tile.x == tile.y;
  let ilo = i0 + ty * 4u;
  let ihi = i0 + 64u + ty * 4u;
  let jlo = j0 + tx * 4u;
  let jhi = j0 + 64u + tx * 4u;
  addRow(ilo, jlo, jhi, c00, c01, diagonal);
  addRow(ilo + 1u, jlo, jhi, c10, c11, diagonal);
  addRow(ilo + 2u, jlo, jhi, c20, c21, diagonal);
  addRow(ilo + 3u, jlo, jhi, c30, c31, diagonal);
  addRow(ihi, jlo, jhi, c40, c41, diagonal);
  addRow(ihi + 1u, jlo, jhi, c50, c51, diagonal);
  addRow(ihi + 2u, jlo, jhi, c60, c61, diagonal);
  addRow(ihi + 3u, jlo, jhi, c70, c71, diagonal);
}

// M[c][r] = a[r] · b[c]: the block H[i0 + r, j0 + c] gets from one row of X.
fn outer(a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(a * b.x, a * b.y, a * b.z, a * b.w);
}

// Adds the 4×4 quadrant m (m[c][r] → H[i0 + r, j0 + c]), and its mirror when `mirror`.
fn addQuad(m: mat4x4<f32>, i0: u32, j0: u32, mirror: bool) {
  let k = params.k;
  for (var c = 0u; c < 4u; c++) {
    let col = m[c];
    for (var r = 0u; r < 4u; r++) {
      h[(i0 + r) * k + j0 + c] += col[r];
      if (mirror) { h[(j0 + c) * k + i0 + r] += col[r]; }
    }
  }
}

@compute @workgroup_size(64)
fn hessianCpu(@builtin(local_invocation_index) lid: u32,
              @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let kv = params.k / 4u;
  let blocks = params.k / 8u;
  let id = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (id >= blocks * (blocks + 1u) / 2u) { return; }
  let blk = upperTile(id);
  let ai = blk.x * 2u;
  let bj = blk.y * 2u;
  var c00 = mat4x4<f32>();
  var c01 = mat4x4<f32>();
  var c10 = mat4x4<f32>();
  var c11 = mat4x4<f32>();
  for (var r = 0u; r < params.rows; r++) {
    let base = (params.rowOffset + r) * kv;
    let a0 = x4[base + ai];
    let a1 = x4[base + ai + 1u];
    let b0 = x4[base + bj];
    let b1 = x4[base + bj + 1u];
    c00 += outer(a0, b0);
    c01 += outer(a0, b1);
    c10 += outer(a1, b0);
    c11 += outer(a1, b1);
  }
  let i0 = blk.x * 8u;
  let j0 = blk.y * 8u;
  let mirror = blk.x != blk.y;
  addQuad(c00, i0, j0, mirror);
  addQuad(c01, i0, j0 + 4u, mirror);
  addQuad(c10, i0 + 4u, j0, mirror);
  addQuad(c11, i0 + 4u, j0 + 4u, mirror);
}
