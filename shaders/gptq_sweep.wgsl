// gptq_sweep — GPTQ's column sweep with error feedback, in lazy batches.
//
// For each block of B columns [i1, i2) of the working weights Wp (columns in
// GPTQ's order), per row:
//   for i in [i1, i2):  q = clamp(round(w_i / scale) + zero, 0, 2^b − 1)
//                       ŵ = (q − zero) · scale       err = (w_i − ŵ) / U_ii
//                       w_j −= err · U_ij  (i < j < i2)     E[row, i − i1] = err
//   then, for the whole matrix at once, W[:, i2:] −= E · U[i1:i2, i2:].
// A quantized column is overwritten by its code (as f32); `pack` builds the
// packed format from them. loss[row] accumulates err².
//
// Layouts (row-major): w [N, K] f32; u [K, K] f32 upper (H⁻¹ = UᵀU); e [N, BMAX]
// f32; scales [N, G] f32, zeros [N, G] u32 (G = K / groupSize); perm [K] u32:
// perm[j] = the original column at position j; inv [K]: its inverse; w0 [N, K]
// the original weights (original order); h [K, K] the Hessian (its diagonal
// marks dead inputs); codes [N, wordsPerRow] u32; loss [N] f32.
//
// Bindings (group 0): 0 w0  1 h  2 w (rw)  3 u  4 e (rw)  5 scales (rw)
//   6 zeros (rw)  7 perm  8 inv  9 codes (rw)  10 loss (rw)  11 params (uniform)
//   12 w4 (rw)  13 e4  14 u4: w, e and u as vec4 (updateCpu only)
//
// Entry points (2D dispatch, workgroups numbered wid.x + wid.y · nwg.x):
//   prepareWeights  w[r, j] = 0 if H[p, p] = 0 else w0[r, p], p = perm[j]; 256/wg.
//   groupParams     scale and zero point of groups [g0, g0 + groupCount) of
//                   every row from w's current values, column c of a group read
//                   at w[r, inv[c]]; RTN's formulas (src/core/quant/rtn.ts).
//                   One (row, group) per invocation, 64 per workgroup.
//   quantBlock      columns [c0, c1) of the block at i1 (width bw), ROWS rows
//                   per workgroup of BMAX invocations: the block's remaining
//                   columns in workgroup memory, invocation t owns column t.
//   quantRows       the same, one row per invocation straight from storage
//                   (no barriers: for CPU adapters), 64 per workgroup.
//   update          W[:, i2:] −= E[:, :bw] · U[i1:i2, i2:], i2 = i1 + bw; 64×64
//                   output tiles, 256 invocations with 4×4 outputs each.
//   updateCpu       the same update for CPU adapters (no workgroup memory, no
//                   barriers): one 8×8 block of W per invocation straight from
//                   storage with vec4 loads (w, e, u seen as vec4: bindings
//                   12, 13, 14), held in mat4x4 values; 64 per workgroup.
//   pack            one (row, 32 codes) per invocation, 64 per workgroup:
//                   codes of original columns c read at w[r, inv[c]].

const BMAX: u32 = 128u;
const T: u32 = 64u;
const BK: u32 = 32u;
override ROWS: u32 = 16u;

struct Params {
  n: u32,
  k: u32,
  i1: u32,         // block start
  bw: u32,         // block width (≤ BMAX)
  c0: u32,         // segment [c0, c1) of the block to quantize
  c1: u32,
  groupSize: u32,
  groups: u32,     // G = K / groupSize
  bits: u32,
  symmetric: u32,
  g0: u32,         // groupParams: first group
  groupCount: u32, // groupParams: groups from g0
  wordsPerRow: u32,
}

@group(0) @binding(0) var<storage, read> w0: array<f32>;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<f32>;
@group(0) @binding(4) var<storage, read_write> e: array<f32>;
@group(0) @binding(5) var<storage, read_write> scales: array<f32>;
@group(0) @binding(6) var<storage, read_write> zeros: array<u32>;
@group(0) @binding(7) var<storage, read> perm: array<u32>;
@group(0) @binding(8) var<storage, read> inv: array<u32>;
@group(0) @binding(9) var<storage, read_write> codes: array<u32>;
@group(0) @binding(10) var<storage, read_write> loss: array<f32>;
@group(0) @binding(11) var<uniform> params: Params;
@group(0) @binding(12) var<storage, read_write> w4: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> e4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> u4: array<vec4<f32>>;

fn flatId(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, wg: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * wg + lid;
}

@compute @workgroup_size(256)
fn prepareWeights(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let id = flatId(wid, nwg, lid, 256u);
  if (id >= params.n * k) { return; }
  let r = id / k;
  let p = perm[id % k];
  var v = 0.0;
  if (h[p * k + p] != 0.0) { v = w0[r * k + p]; }
  w[id] = v;
}

@compute @workgroup_size(64)
fn groupParams(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let id = flatId(wid, nwg, lid, 64u);
  if (id >= params.n * params.groupCount) { return; }
  let r = id / params.groupCount;
  let g = params.g0 + id % params.groupCount;
  var lo = 0.0;  // min(min(w), 0)
  var hi = 0.0;  // max(max(w), 0)
  for (var c = g * params.groupSize; c < (g + 1u) * params.groupSize; c++) {
    let v = w[r * k + inv[c]];
    lo = min(lo, v);
    hi = max(hi, v);
  }
  let maxq = f32((1u << params.bits) - 1u);
  if (params.symmetric != 0u) {
    hi = max(-lo, hi);
    lo = -hi;
  }
  if (hi == lo) {
    lo = -1.0;
    hi = 1.0;
  }
  let scale = (hi - lo) / maxq;
  var zero = 1u << (params.bits - 1u);
  if (params.symmetric == 0u) { zero = u32(clamp(round(-lo / scale), 0.0, maxq)); }
  scales[r * params.groups + g] = scale;
  zeros[r * params.groups + g] = zero;
}

// Quantizes w at column i of row r; returns (code, err).
fn quantizeAt(r: u32, i: u32, v: f32) -> vec2<f32> {
  let g = perm[i] / params.groupSize;
  let scale = scales[r * params.groups + g];
  let zero = f32(zeros[r * params.groups + g]);
  let maxq = f32((1u << params.bits) - 1u);
  let q = clamp(round(v / scale) + zero, 0.0, maxq);
  let deq = (q - zero) * scale;
  return vec2<f32>(q, (v - deq) / u[i * params.k + i]);
}

var<workgroup> tile: array<f32, ROWS * BMAX>;
var<workgroup> errs: array<f32, ROWS>;

@compute @workgroup_size(BMAX)
fn quantBlock(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let n = params.n;
  let i1 = params.i1;
  let bw = params.bw;
  let first = params.c0 - i1;
  let row0 = (wid.x + wid.y * nwg.x) * ROWS;
  if (row0 >= n) { return; }
  for (var x = lid; x < ROWS * BMAX; x += BMAX) {
    let r = x / BMAX;
    let j = x % BMAX;
    if (j >= first && j < bw && row0 + r < n) { tile[x] = w[(row0 + r) * k + i1 + j]; }
  }
  var lossAcc = 0.0;
  workgroupBarrier();
  for (var i = params.c0; i < params.c1; i++) {
    let li = i - i1;
    if (lid < ROWS) {
      var err = 0.0;
      if (row0 + lid < n) {
        let qe = quantizeAt(row0 + lid, i, tile[lid * BMAX + li]);
        err = qe.y;
        tile[lid * BMAX + li] = qe.x;
        e[(row0 + lid) * BMAX + li] = err;
        lossAcc += err * err;
      }
      errs[lid] = err;
    }
    workgroupBarrier();
    if (lid > li && lid < bw) {
      let uv = u[i * k + i1 + lid];
      for (var r = 0u; r < ROWS; r++) { tile[r * BMAX + lid] -= errs[r] * uv; }
    }
    workgroupBarrier();
  }
  for (var x = lid; x < ROWS * BMAX; x += BMAX) {
    let r = x / BMAX;
    let j = x % BMAX;
    if (j >= first && j < bw && row0 + r < n) { w[(row0 + r) * k + i1 + j] = tile[x]; }
  }
  if (lid < ROWS && row0 + lid < n) { loss[row0 + lid] += lossAcc; }
}

@compute @workgroup_size(64)
fn quantRows(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let r = flatId(wid, nwg, lid, 64u);
  if (r >= params.n) { return; }
  let i2 = params.i1 + params.bw;
  var lossAcc = 0.0;
  for (var i = params.c0; i < params.c1; i++) {
    let qe = quantizeAt(r, i, w[r * k + i]);
    w[r * k + i] = qe.x;
    e[r * BMAX + i - params.i1] = qe.y;
    lossAcc += qe.y * qe.y;
    for (var j = i + 1u; j < i2; j++) { w[r * k + j] -= qe.y * u[i * k + j]; }
  }
  loss[r] += lossAcc;
}

// [BK][64], four consecutive rows (ea) or columns (ub) per vec4.
var<workgroup> ea: array<vec4<f32>, 512>;
var<workgroup> ub: array<vec4<f32>, 512>;

@compute @workgroup_size(256)
fn update(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let n = params.n;
  let i2 = params.i1 + params.bw;
  let cols = k - i2;
  let tilesC = (cols + T - 1u) / T;
  let id = wid.x + wid.y * nwg.x;
  if (id >= tilesC * ((n + T - 1u) / T)) { return; }
  // Column tiles fastest: neighbouring workgroups share their E rows.
  let r0 = (id / tilesC) * T;
  let c0 = i2 + (id % tilesC) * T;
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc: array<vec4<f32>, 4>;
  for (var l0 = 0u; l0 < params.bw; l0 += BK) {
    // E: each invocation one row m and four consecutive l, so that neighbouring
    // invocations write neighbouring words of ea (no bank conflicts).
    for (var x = lid; x < BK * T / 4u; x += 256u) {
      let m = x % T;
      let lq = x / T * 4u;
      var ve = vec4<f32>(0.0);
      if (r0 + m < n) {
        let at = (r0 + m) * BMAX + l0 + lq;
        ve = vec4<f32>(e[at], e[at + 1u], e[at + 2u], e[at + 3u]);
      }
      ea[lq * 16u + m / 4u][m % 4u] = ve.x;
      ea[(lq + 1u) * 16u + m / 4u][m % 4u] = ve.y;
      ea[(lq + 2u) * 16u + m / 4u][m % 4u] = ve.z;
      ea[(lq + 3u) * 16u + m / 4u][m % 4u] = ve.w;
    }
    // U: 64 consecutive columns per l.
    for (var x = lid; x < BK * T; x += 256u) {
      let lu = x / T;
      let cu = x % T;
      var vu = 0.0;
      if (c0 + cu < k) { vu = u[(params.i1 + l0 + lu) * k + c0 + cu]; }
      ub[lu * 16u + cu / 4u][cu % 4u] = vu;
    }
    workgroupBarrier();
    for (var l = 0u; l < BK; l++) {
      let va = ea[l * 16u + ty];
      let vb = ub[l * 16u + tx];
      acc[0] += va.x * vb;
      acc[1] += va.y * vb;
      acc[2] += va.z * vb;
      acc[3] += va.w * vb;
    }
    workgroupBarrier();
  }
  for (var a = 0u; a < 4u; a++) {
    let row = r0 + ty * 4u + a;
    if (row >= n) { continue; }
    for (var c = 0u; c < 4u; c++) {
      let col = c0 + tx * 4u + c;
      if (col < k) { w[row * k + col] -= acc[a][c]; }
    }
  }
}

// M[c][r] = dot(a_r, b_c).
fn dots(a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
        b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(vec4<f32>(dot(a0, b0), dot(a1, b0), dot(a2, b0), dot(a3, b0)),
                     vec4<f32>(dot(a0, b1), dot(a1, b1), dot(a2, b1), dot(a3, b1)),
                     vec4<f32>(dot(a0, b2), dot(a1, b2), dot(a2, b2), dot(a3, b2)),
                     vec4<f32>(dot(a0, b3), dot(a1, b3), dot(a2, b3), dot(a3, b3)));
}

// w[row, c0 … c0 + 7] −= (lo, hi) for rows inside W.
fn subtractW(row: u32, at: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (row < params.n) {
    w4[at] -= lo;
    w4[at + 1u] -= hi;
  }
}

@compute @workgroup_size(64)
fn updateCpu(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let kv = k / 4u;
  let n = params.n;
  let i2 = params.i1 + params.bw;
  let blocksC = (k - i2) / 8u;
  let id = flatId(wid, nwg, lid, 64u);
  if (id >= blocksC * ((n + 7u) / 8u)) { return; }
  // Column blocks fastest: the lanes a CPU driver runs together share their E rows.
  let r0 = (id / blocksC) * 8u;
  let c0 = i2 + (id % blocksC) * 8u;
  let ev = BMAX / 4u;
  // Rows past N repeat the last row (in bounds, never written).
  let e0r = min(r0, n - 1u) * ev;
  let e1r = min(r0 + 1u, n - 1u) * ev;
  let e2r = min(r0 + 2u, n - 1u) * ev;
  let e3r = min(r0 + 3u, n - 1u) * ev;
  let e4r = min(r0 + 4u, n - 1u) * ev;
  let e5r = min(r0 + 5u, n - 1u) * ev;
  let e6r = min(r0 + 6u, n - 1u) * ev;
  let e7r = min(r0 + 7u, n - 1u) * ev;
  var c00 = mat4x4<f32>();
  var c01 = mat4x4<f32>();
  var c10 = mat4x4<f32>();
  var c11 = mat4x4<f32>();
  for (var t = 0u; t < params.bw / 4u; t++) {
    let ub = (params.i1 + 4u * t) * kv + c0 / 4u;
    // lo[c] = U[l … l + 3, c0 + c], hi[c] = U[l … l + 3, c0 + 4 + c].
    let lo = transpose(mat4x4<f32>(u4[ub], u4[ub + kv], u4[ub + 2u * kv], u4[ub + 3u * kv]));
    let hi = transpose(mat4x4<f32>(u4[ub + 1u], u4[ub + kv + 1u], u4[ub + 2u * kv + 1u], u4[ub + 3u * kv + 1u]));
    let x0 = e4[e0r + t];
    let x1 = e4[e1r + t];
    let x2 = e4[e2r + t];
    let x3 = e4[e3r + t];
    let x4 = e4[e4r + t];
    let x5 = e4[e5r + t];
    let x6 = e4[e6r + t];
    let x7 = e4[e7r + t];
    c00 += dots(x0, x1, x2, x3, lo[0], lo[1], lo[2], lo[3]);
    c01 += dots(x0, x1, x2, x3, hi[0], hi[1], hi[2], hi[3]);
    c10 += dots(x4, x5, x6, x7, lo[0], lo[1], lo[2], lo[3]);
    c11 += dots(x4, x5, x6, x7, hi[0], hi[1], hi[2], hi[3]);
  }
  let t00 = transpose(c00);
  let t01 = transpose(c01);
  let t10 = transpose(c10);
  let t11 = transpose(c11);
  let at = r0 * kv + c0 / 4u;
  subtractW(r0 + 0u, at, t00[0], t01[0]);
  subtractW(r0 + 1u, at + kv, t00[1], t01[1]);
  subtractW(r0 + 2u, at + 2u * kv, t00[2], t01[2]);
  subtractW(r0 + 3u, at + 3u * kv, t00[3], t01[3]);
  subtractW(r0 + 4u, at + 4u * kv, t10[0], t11[0]);
  subtractW(r0 + 5u, at + 5u * kv, t10[1], t11[1]);
  subtractW(r0 + 6u, at + 6u * kv, t10[2], t11[2]);
  subtractW(r0 + 7u, at + 7u * kv, t10[3], t11[3]);
}

@compute @workgroup_size(64)
fn pack(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = params.k;
  let bits = params.bits;
  let blocks = k / 32u;
  let id = flatId(wid, nwg, lid, 64u);
  if (id >= params.n * blocks) { return; }
  let r = id / blocks;
  let blk = id % blocks;
  var words: array<u32, 8>;
  for (var c = 0u; c < 32u; c++) {
    let q = u32(w[r * k + inv[blk * 32u + c]]);
    let bit = c * bits;
    let off = bit % 32u;
    words[bit / 32u] |= q << off;
    if (off + bits > 32u) { words[bit / 32u + 1u] |= q >> (32u - off); }
  }
  let base = r * params.wordsPerRow + blk * bits;
  for (var x = 0u; x < bits; x++) { codes[base + x] = words[x]; }
}
