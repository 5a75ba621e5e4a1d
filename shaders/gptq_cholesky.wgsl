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
//                     5 status (rw)  6 xinv (rw)  7 a4: a as vec4 (rw)
//                     8 xinv4: xinv as vec4 (rw)
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
//
// For CPU adapters (no workgroup memory, no barriers: a CPU driver switches
// through every invocation at each barrier), straight from storage with vec4
// loads, blocks held in mat4x4 values:
//   cholUpdateCpu  the trailing update, one 8×8 lower block per invocation
//                  (a seen as vec4, binding 7); 64 per workgroup.
//   invColumnsCpu  X = L⁻¹ by forward substitution, four columns and four
//                  rows at a time per invocation (L and X seen as vec4,
//                  bindings 7 and 8); 64 per workgroup.

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
@group(0) @binding(7) var<storage, read_write> a4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> xinv4: array<vec4<f32>>;

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
  // Each invocation one row m and four consecutive columns kk of each panel, so that
  // neighbouring invocations write neighbouring words (no bank conflicts).
  for (var e = lid; e < NB * T / 4u; e += 256u) {
    let m = e % T;
    let kq = e / T * 4u;
    var va = vec4<f32>(0.0);
    var vb = vec4<f32>(0.0);
    if (i0 + m < k) {
      let at = (i0 + m) * k + b + kq;
      va = vec4<f32>(a[at], a[at + 1u], a[at + 2u], a[at + 3u]);
    }
    if (j0 + m < k) {
      let at = (j0 + m) * k + b + kq;
      vb = vec4<f32>(a[at], a[at + 1u], a[at + 2u], a[at + 3u]);
    }
    for (var q = 0u; q < 4u; q++) {
      pa[(kq + q) * 16u + m / 4u][m % 4u] = va[q];
      pb[(kq + q) * 16u + m / 4u][m % 4u] = vb[q];
    }
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
    // la: one row r and four consecutive m per invocation (no bank conflicts).
    for (var e = lid; e < NB * NB / 4u; e += 64u) {
      let r = e % NB;
      let mq = e / NB * 4u;
      let at = (ri + r) * k + cm * NB + mq;
      for (var q = 0u; q < 4u; q++) { la[(mq + q) * 8u + r / 4u][r % 4u] = a[at + q]; }
    }
    for (var e = lid; e < NB * NB; e += 64u) {
      let r = e / NB;
      let m = e % NB;
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

// ------------------------------------------------- CPU-shaped variants ----

// M[c][r] = dot(a_r, b_c).
fn dots(a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
        b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(vec4<f32>(dot(a0, b0), dot(a1, b0), dot(a2, b0), dot(a3, b0)),
                     vec4<f32>(dot(a0, b1), dot(a1, b1), dot(a2, b1), dot(a3, b1)),
                     vec4<f32>(dot(a0, b2), dot(a1, b2), dot(a2, b2), dot(a3, b2)),
                     vec4<f32>(dot(a0, b3), dot(a1, b3), dot(a2, b3), dot(a3, b3)));
}

// a[row, j0 … j0 + 7] −= (lo, hi), only where the column is ≤ row when `diagonal`.
fn subtractRow(row: u32, j0: u32, lo: vec4<f32>, hi: vec4<f32>, diagonal: bool) {
  let at = (row * params.k + j0) / 4u;
  let cols = vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(j0);
  var mLo = vec4<bool>(true);
  var mHi = vec4<bool>(true);
  if (diagonal) {
    mLo = cols <= vec4<u32>(row);
    mHi = cols + vec4<u32>(4u) <= vec4<u32>(row);
  }
  a4[at] = select(a4[at], a4[at] - lo, mLo);
  a4[at + 1u] = select(a4[at + 1u], a4[at + 1u] - hi, mHi);
}

@compute @workgroup_size(64)
fn cholUpdateCpu(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let kv = k / 4u;
  let b = params.b;
  let start = b + NB;
  let blocks = (k - start) / 8u;
  let id = flatId(wid, nwg, lid, 64u);
  if (id >= blocks * (blocks + 1u) / 2u) { return; }
  let blk = lowerTile(id);
  let i0 = start + blk.x * 8u;
  let j0 = start + blk.y * 8u;
  let ri = i0 * kv + b / 4u;
  let rj = j0 * kv + b / 4u;
  var c00 = mat4x4<f32>();
  var c01 = mat4x4<f32>();
  var c10 = mat4x4<f32>();
  var c11 = mat4x4<f32>();
  for (var t = 0u; t < NB / 4u; t++) {
    let a0 = a4[ri + t];
    let a1 = a4[ri + kv + t];
    let a2 = a4[ri + 2u * kv + t];
    let a3 = a4[ri + 3u * kv + t];
    let a4v = a4[ri + 4u * kv + t];
    let a5 = a4[ri + 5u * kv + t];
    let a6 = a4[ri + 6u * kv + t];
    let a7 = a4[ri + 7u * kv + t];
    let b0 = a4[rj + t];
    let b1 = a4[rj + kv + t];
    let b2 = a4[rj + 2u * kv + t];
    let b3 = a4[rj + 3u * kv + t];
    let b4 = a4[rj + 4u * kv + t];
    let b5 = a4[rj + 5u * kv + t];
    let b6 = a4[rj + 6u * kv + t];
    let b7 = a4[rj + 7u * kv + t];
    c00 += dots(a0, a1, a2, a3, b0, b1, b2, b3);
    c01 += dots(a0, a1, a2, a3, b4, b5, b6, b7);
    c10 += dots(a4v, a5, a6, a7, b0, b1, b2, b3);
    c11 += dots(a4v, a5, a6, a7, b4, b5, b6, b7);
  }
  // Row r of the block: transpose(c·)[r] holds its columns.
  let diagonal = blk.x == blk.y;
  let t00 = transpose(c00);
  let t01 = transpose(c01);
  let t10 = transpose(c10);
  let t11 = transpose(c11);
  subtractRow(i0 + 0u, j0, t00[0], t01[0], diagonal);
  subtractRow(i0 + 1u, j0, t00[1], t01[1], diagonal);
  subtractRow(i0 + 2u, j0, t00[2], t01[2], diagonal);
  subtractRow(i0 + 3u, j0, t00[3], t01[3], diagonal);
  subtractRow(i0 + 4u, j0, t10[0], t11[0], diagonal);
  subtractRow(i0 + 5u, j0, t10[1], t11[1], diagonal);
  subtractRow(i0 + 6u, j0, t10[2], t11[2], diagonal);
  subtractRow(i0 + 7u, j0, t10[3], t11[3], diagonal);
}

// L[i, j] (row-major in a, read as vec4).
fn lAt(i: u32, j: u32) -> f32 {
  let e = i * params.k + j;
  return a4[e / 4u][e % 4u];
}

@compute @workgroup_size(64)
fn invColumnsCpu(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let kv = k / 4u;
  let q = flatId(wid, nwg, lid, 64u);
  if (q >= kv) { return; }
  let c0 = q * 4u;
  // Columns c0 … c0 + 3 of L X = I, rows four at a time (i0 … i0 + 3):
  //   x_i = (e_i − Σ_{c0 ≤ p < i} L_ip x_p) / L_ii
  // where x_p is zero in the columns right of p, so the four columns start
  // together. The sum over p < i0 is a 4×4 block product (vec4 loads); the
  // rows of the quartet then follow each other.
  for (var i0 = c0; i0 < k; i0 += 4u) {
    var acc = mat4x4<f32>();  // acc[c][r] = Σ_p L[i0 + r, p] · X[p, c0 + c]
    for (var p = c0; p < i0; p += 4u) {
      let lr = (i0 * k + p) / 4u;
      let xp = transpose(mat4x4<f32>(xinv4[p * kv + q], xinv4[(p + 1u) * kv + q],
                                     xinv4[(p + 2u) * kv + q], xinv4[(p + 3u) * kv + q]));
      acc += dots(a4[lr], a4[lr + kv], a4[lr + 2u * kv], a4[lr + 3u * kv], xp[0], xp[1], xp[2], xp[3]);
    }
    let s = transpose(acc);  // s[r] = row i0 + r, over the four columns
    var e0 = vec4<f32>(0.0);
    var e1 = vec4<f32>(0.0);
    var e2 = vec4<f32>(0.0);
    var e3 = vec4<f32>(0.0);
    if (i0 == c0) {
      e0 = vec4<f32>(1.0, 0.0, 0.0, 0.0);
      e1 = vec4<f32>(0.0, 1.0, 0.0, 0.0);
      e2 = vec4<f32>(0.0, 0.0, 1.0, 0.0);
      e3 = vec4<f32>(0.0, 0.0, 0.0, 1.0);
    }
    let x0 = (e0 - s[0]) / lAt(i0, i0);
    let x1 = (e1 - s[1] - lAt(i0 + 1u, i0) * x0) / lAt(i0 + 1u, i0 + 1u);
    let x2 = (e2 - s[2] - lAt(i0 + 2u, i0) * x0 - lAt(i0 + 2u, i0 + 1u) * x1) / lAt(i0 + 2u, i0 + 2u);
    let x3 = (e3 - s[3] - lAt(i0 + 3u, i0) * x0 - lAt(i0 + 3u, i0 + 1u) * x1 - lAt(i0 + 3u, i0 + 2u) * x2) / lAt(i0 + 3u, i0 + 3u);
    xinv4[i0 * kv + q] = x0;
    xinv4[(i0 + 1u) * kv + q] = x1;
    xinv4[(i0 + 2u) * kv + q] = x2;
    xinv4[(i0 + 3u) * kv + q] = x3;
  }
}
