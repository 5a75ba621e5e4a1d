// gptq_cholesky — U, the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU), for GPTQ.
//
// Route: with J the reversal (J_ij = 1 where i + j = K − 1) and P GPTQ's
// column order (act-order, else the identity),
//   A = J Pᵀ(H + λI)P J = L Lᵀ       (blocked Cholesky, L lower)
//   X = L⁻¹                         (blocked triangular inverse, lower)
//   U = J X J                       (upper)
// because Pᵀ(H + λI)P = (JLJ)(JLJ)ᵀ with JLJ upper, so its inverse is
// (JXJ)ᵀ(JXJ). Two O(K³/3) passes; no K×K work on the CPU.
//
// Layouts (f32, row-major, K a multiple of NB = 32):
//   h [K, K] the Hessian (read only: callers share it between layers)
//   a [K, K] A, factored in place into L (lower triangle; the upper triangle
//            is left as scratch), finally overwritten by U (zeros below)
//   xinv [K, K] X = L⁻¹ (lower; must start zeroed)
//   perm [K] u32: perm[j] = the original column quantized j-th
//   diag [K] f32: H's diagonal; status [1] u32: 0, or 1 + the first column
//            whose pivot was not positive
//
// Bindings (group 0): 0 h  1 diag (rw)  2 a (rw)  3 perm  4 params (uniform)
//                     5 status (rw)  6 xinv (rw)
//
// Entry points (2D dispatch, workgroups numbered wid.x + wid.y · nwg.x):
//   diagonal   diag[j] = H[j, j]; 64 per workgroup.
//   prepare    a = A above, with dead inputs (H_jj = 0) set to 1 before λ is
//              added; one element per invocation, 256 per workgroup.
//   cholDiag   factors the diagonal block at b (NB × NB, in workgroup memory);
//              one workgroup of DIAG_WG invocations.
//   cholPanel  rows i ≥ b + NB of the block column: L_ib = A_ib L_bbᵀ⁻¹ (forward
//              substitution per row); 64 rows per workgroup.
//   cholUpdate trailing lower triangle: A_ij −= L_ib L_jbᵀ for b + NB ≤ j ≤ i;
//              one 256-invocation workgroup per 64×64 lower tile, the panel in
//              workgroup memory, 4×4 outputs per invocation.
//   invDiag    the diagonal blocks' inverses X_bb = L_bb⁻¹; one column of one
//              block per invocation, 64 per workgroup.
//   invBlock   step s ≥ 1: X_ij for i = j + s, all block columns j at once:
//              X_ij = −X_ii · Σ_{j ≤ c < i} L_ic X_cj. One 64-invocation
//              workgroup per block, products in workgroup memory.
//   reverse    a[i, j] = X[K−1−i, K−1−j] for i ≤ j, else 0; 256 per workgroup.

const NB: u32 = 32u;
const T: u32 = 64u;
override DIAG_WG: u32 = 256u;

struct Params {
  k: u32,
  b: u32,       // block start (cholDiag, cholPanel, cholUpdate)
  s: u32,       // invBlock: distance from the diagonal in blocks
  tiles: u32,   // cholUpdate: ⌈(K − b − NB) / 64⌉
  lambda: f32,  // prepare
}

@group(0) @binding(0) var<storage, read> h: array<f32>;
@group(0) @binding(1) var<storage, read_write> diag: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read> perm: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read_write> status: array<u32>;
@group(0) @binding(6) var<storage, read_write> xinv: array<f32>;

fn flatId(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, wg: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * wg + lid;
}

@compute @workgroup_size(64)
fn diagonal(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flatId(wid, nwg, lid, 64u);
  if (j < params.k) { diag[j] = h[j * params.k + j]; }
}

@compute @workgroup_size(256)
fn prepare(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let e = flatId(wid, nwg, lid, 256u);
  if (e >= k * k) { return; }
  let r = e / k;
  let c = e % k;
  let pr = perm[k - 1u - r];
  let pc = perm[k - 1u - c];
  var v = h[pr * k + pc];
  if (r == c) {
    if (v == 0.0) { v = 1.0; }
    v += params.lambda;
  }
  a[e] = v;
}

// ------------------------------------------------------------ Cholesky ----

var<workgroup> blk: array<f32, 1056>;  // NB × (NB + 1), padded rows

@compute @workgroup_size(DIAG_WG)
fn cholDiag(@builtin(local_invocation_index) lid: u32) {
  let k = params.k;
  let b = params.b;
  for (var e = lid; e < NB * NB; e += DIAG_WG) {
    blk[(e / NB) * (NB + 1u) + e % NB] = a[(b + e / NB) * k + b + e % NB];
  }
  workgroupBarrier();
  for (var j = 0u; j < NB; j++) {
    if (lid == 0u) {
      let d = blk[j * (NB + 1u) + j];
      if (!(d > 0.0) && status[0] == 0u) { status[0] = 1u + b + j; }
      blk[j * (NB + 1u) + j] = sqrt(max(d, 1e-30));
    }
    workgroupBarrier();
    let pivot = blk[j * (NB + 1u) + j];
    for (var i = j + 1u + lid; i < NB; i += DIAG_WG) { blk[i * (NB + 1u) + j] /= pivot; }
    workgroupBarrier();
    for (var e = lid; e < NB * NB; e += DIAG_WG) {
      let i = e / NB;
      let l = e % NB;
      if (l > j && i >= l) { blk[i * (NB + 1u) + l] -= blk[i * (NB + 1u) + j] * blk[l * (NB + 1u) + j]; }
    }
    workgroupBarrier();
  }
  for (var e = lid; e < NB * NB; e += DIAG_WG) {
    let i = e / NB;
    let l = e % NB;
    if (l <= i) { a[(b + i) * k + b + l] = blk[i * (NB + 1u) + l]; }
  }
}

@compute @workgroup_size(64)
fn cholPanel(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let b = params.b;
  let i = b + NB + flatId(wid, nwg, lid, 64u);
  if (i >= k) { return; }
  let row = i * k + b;
  for (var j = 0u; j < NB; j++) {
    let lrow = (b + j) * k + b;
    var s = a[row + j];
    for (var l = 0u; l < j; l++) { s -= a[row + l] * a[lrow + l]; }
    a[row + j] = s / a[lrow + j];
  }
}

// The id-th tile (ti, tj) of a lower triangle of tiles, tj ≤ ti, row by row.
fn lowerTile(id: u32) -> vec2<u32> {
  var r = u32((sqrt(8.0 * f32(id) + 1.0) - 1.0) * 0.5);
  while (r * (r + 1u) / 2u > id) { r -= 1u; }
  while ((r + 1u) * (r + 2u) / 2u <= id) { r += 1u; }
  return vec2<u32>(r, id - r * (r + 1u) / 2u);
}

// Panels [NB columns][64 rows], four consecutive rows per vec4.
var<workgroup> pa: array<vec4<f32>, 512>;
var<workgroup> pb: array<vec4<f32>, 512>;

@compute @workgroup_size(256)
fn cholUpdate(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let b = params.b;
  let id = wid.x + wid.y * nwg.x;
  if (id >= params.tiles * (params.tiles + 1u) / 2u) { return; }
  let tile = lowerTile(id);
  let start = b + NB;
  let i0 = start + tile.x * T;
  let j0 = start + tile.y * T;
  for (var e = lid; e < NB * T; e += 256u) {
    let m = e / NB;
    let kk = e % NB;
    var va = 0.0;
    var vb = 0.0;
    if (i0 + m < k) { va = a[(i0 + m) * k + b + kk]; }
    if (j0 + m < k) { vb = a[(j0 + m) * k + b + kk]; }
    pa[kk * 16u + m / 4u][m % 4u] = va;
    pb[kk * 16u + m / 4u][m % 4u] = vb;
  }
  workgroupBarrier();
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc: array<vec4<f32>, 4>;
  for (var kk = 0u; kk < NB; kk++) {
    let va = pa[kk * 16u + ty];
    let vb = pb[kk * 16u + tx];
    acc[0] += va.x * vb;
    acc[1] += va.y * vb;
    acc[2] += va.z * vb;
    acc[3] += va.w * vb;
  }
  for (var r = 0u; r < 4u; r++) {
    let gi = i0 + ty * 4u + r;
    if (gi >= k) { continue; }
    for (var c = 0u; c < 4u; c++) {
      let gj = j0 + tx * 4u + c;
      if (gj <= gi) { a[gi * k + gj] -= acc[r][c]; }
    }
  }
}

// ------------------------------------------------- triangular inverse ----

@compute @workgroup_size(64)
fn invDiag(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let id = flatId(wid, nwg, lid, 64u);
  if (id >= k) { return; }
  let base = (id / NB) * NB;
  let c = base + id % NB;
  xinv[c * k + c] = 1.0 / a[c * k + c];
  for (var i = c + 1u; i < base + NB; i++) {
    var s = 0.0;
    for (var p = c; p < i; p++) { s += a[i * k + p] * xinv[p * k + c]; }
    xinv[i * k + c] = -s / a[i * k + i];
  }
}

// [NB][NB] blocks, four consecutive entries per vec4: la[m][a] = L[a][m], xb[m][c] = X[m][c].
var<workgroup> la: array<vec4<f32>, 256>;
var<workgroup> xb: array<vec4<f32>, 256>;
var<workgroup> prod: array<f32, 1024>;

@compute @workgroup_size(64)
fn invBlock(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let j = wid.x + wid.y * nwg.x;
  let i = j + params.s;
  if (i >= k / NB) { return; }
  let ri = i * NB;
  let cj = j * NB;
  let tx = lid % 8u;
  let ty = lid / 8u;
  var acc: array<vec4<f32>, 4>;
  for (var cm = j; cm < i; cm++) {
    for (var e = lid; e < NB * NB; e += 64u) {
      let r = e / NB;
      let m = e % NB;
      la[m * 8u + r / 4u][r % 4u] = a[(ri + r) * k + cm * NB + m];
      xb[r * 8u + m / 4u][m % 4u] = xinv[(cm * NB + r) * k + cj + m];
    }
    workgroupBarrier();
    for (var m = 0u; m < NB; m++) {
      let va = la[m * 8u + ty];
      let vb = xb[m * 8u + tx];
      acc[0] += va.x * vb;
      acc[1] += va.y * vb;
      acc[2] += va.z * vb;
      acc[3] += va.w * vb;
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 4u; c++) { prod[(ty * 4u + r) * NB + tx * 4u + c] = acc[r][c]; }
  }
  workgroupBarrier();
  // X_ij = −X_ii · prod, X_ii lower triangular.
  for (var r = 0u; r < 4u; r++) {
    let ar = ty * 4u + r;
    var out = vec4<f32>(0.0);
    for (var m = 0u; m <= ar; m++) {
      let d = xinv[(ri + ar) * k + ri + m];
      out += d * vec4<f32>(prod[m * NB + tx * 4u], prod[m * NB + tx * 4u + 1u],
                           prod[m * NB + tx * 4u + 2u], prod[m * NB + tx * 4u + 3u]);
    }
    for (var c = 0u; c < 4u; c++) { xinv[(ri + ar) * k + cj + tx * 4u + c] = -out[c]; }
  }
}

@compute @workgroup_size(256)
fn reverse(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let e = flatId(wid, nwg, lid, 256u);
  if (e >= k * k) { return; }
  let i = e / k;
  let j = e % k;
  var v = 0.0;
  if (i <= j) { v = xinv[(k - 1u - i) * k + (k - 1u - j)]; }
  a[e] = v;
}
