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
    for (var x = lid; x < BK * T; x += 256u) {
      // E: 32 consecutive l per row; U: 64 consecutive columns per l.
      let m = x / BK;
      let l = x % BK;
      var ve = 0.0;
      if (r0 + m < n) { ve = e[(r0 + m) * BMAX + l0 + l]; }
      ea[l * 16u + m / 4u][m % 4u] = ve;
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
