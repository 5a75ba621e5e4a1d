// matmul_f32 — the unquantized linear layer: y = x · Wᵀ (+ bias).
//
//   y[m, n] = Σ_k x[m, k] · W[n, k] (+ bias[n])
//
// Layouts (all f32, row-major, any M, N, K — no multiple-of requirements):
//   x [M, K]   M is not passed: it is the bound size of x divided by K
//              (the caller binds exactly M·K floats).
//   W [N, K]   the PyTorch nn.Linear weight layout.
//   bias [N]   (bound to anything when HAS_BIAS is false).
//   y [M, N]
//
// Bindings (group 0):
//   0 x: array<f32>    1 w: array<f32>    2 bias: array<f32>
//   3 y: array<f32> (read_write)          4 params: uniform Params
//   5 x4: array<vec4<f32>>  6 w4: array<vec4<f32>>   (gemv4 only: the same
//     x and W seen as vec4, for K a multiple of 4)
//
// Entry points (one workgroup = 256 invocations; dispatch is 2D, workgroups
// numbered wid.x + wid.y · num_workgroups.x, to stay under 65535 per dimension):
//   gemv4 — small M, K % 4 = 0. A team of TPR invocations shares ROWS = 4 rows:
//           each invocation walks the rows with stride TPR vec4 (consecutive
//           invocations read consecutive 16-byte lines), reusing each x vec4
//           for the 4 rows; the team reduces through workgroup memory.
//           Workgroups: ⌈N / (4 · 256 / TPR)⌉.
//   gemv  — the same with scalar loads, for any K.
//   gemm  — many rows: 64×64 output tiles, K in steps of 32 staged in
//           workgroup memory (coalesced: 32 consecutive k per row per load),
//           4×4 outputs per invocation. Workgroups: ⌈M / 64⌉ · ⌈N / 64⌉, M tiles
//           fastest so W tiles are reused from cache.
//
// Specialization: the gemv kernels by override constants HAS_BIAS and TPR (team
// width, a power of two from 8 to 256); gemm reads params.hasBias, so one gemm
// pipeline serves every layer (compiling one takes seconds on some drivers).

override HAS_BIAS: bool = false;
override TPR: u32 = 64u;

const WG: u32 = 256u;
const ROWS: u32 = 4u;
const TILE: u32 = 64u;
const BK: u32 = 32u;

struct Params {
  n: u32,
  k: u32,
  hasBias: u32,  // gemm: 1 = add bias
  pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> w4: array<vec4<f32>>;

// ---------------------------------------------------------------- gemv ----

var<workgroup> partial: array<vec4<f32>, WG>;

// Reduces the team's partial sums and writes the team's rows of y for x row mi.
fn reduceAndStore(acc: vec4<f32>, lid: u32, lane: u32, row0: u32, mi: u32) {
  let n = params.n;
  partial[lid] = acc;
  for (var stride = TPR / 2u; stride > 0u; stride >>= 1u) {
    workgroupBarrier();
    if (lane < stride) { partial[lid] += partial[lid + stride]; }
  }
  workgroupBarrier();
  if (lane == 0u) {
    let total = partial[lid];
    for (var r = 0u; r < ROWS; r++) {
      let row = row0 + r;
      if (row < n) {
        var v = total[r];
        if (HAS_BIAS) { v += bias[row]; }
        y[mi * n + row] = v;
      }
    }
  }
}

@compute @workgroup_size(WG)
fn gemv4(@builtin(local_invocation_index) lid: u32,
         @builtin(workgroup_id) wid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let kv = params.k / 4u;
  let m = arrayLength(&x4) / kv;
  let flat = wid.x + wid.y * nwg.x;
  let lane = lid % TPR;
  let row0 = (flat * (WG / TPR) + lid / TPR) * ROWS;
  // Rows past N repeat the last row (in bounds, never written).
  var base: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { base[r] = min(row0 + r, n - 1u) * kv; }
  for (var mi = 0u; mi < m; mi++) {
    var acc = vec4<f32>(0.0);
    for (var i = lane; i < kv; i += TPR) {
      let xv = x4[mi * kv + i];
      for (var r = 0u; r < ROWS; r++) { acc[r] += dot(w4[base[r] + i], xv); }
    }
    reduceAndStore(acc, lid, lane, row0, mi);
  }
}

@compute @workgroup_size(WG)
fn gemv(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let k = params.k;
  let m = arrayLength(&x) / k;
  let flat = wid.x + wid.y * nwg.x;
  let lane = lid % TPR;
  let row0 = (flat * (WG / TPR) + lid / TPR) * ROWS;
  var base: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { base[r] = min(row0 + r, n - 1u) * k; }
  for (var mi = 0u; mi < m; mi++) {
    var acc = vec4<f32>(0.0);
    for (var i = lane; i < k; i += TPR) {
      let xv = x[mi * k + i];
      for (var r = 0u; r < ROWS; r++) { acc[r] += w[base[r] + i] * xv; }
    }
    reduceAndStore(acc, lid, lane, row0, mi);
  }
}

// ---------------------------------------------------------------- gemm ----

// Staged tiles, k-major: xs[kk · 16 + m/4][m % 4] = x[mBase + m, k0 + kk]; ws likewise for W.
var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> ws: array<vec4<f32>, 512>;

@compute @workgroup_size(WG)
fn gemm(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let k = params.k;
  let m = arrayLength(&x) / k;
  let tilesM = (m + TILE - 1u) / TILE;
  let tilesN = (n + TILE - 1u) / TILE;
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= tilesM * tilesN) { return; }
  let mBase = (flat % tilesM) * TILE;
  let nBase = (flat / tilesM) * TILE;
  let tx = lid % 16u;  // output columns nBase + 4·tx …
  let ty = lid / 16u;  // output rows    mBase + 4·ty …
  // Staging: invocation → k offset lid % 32, rows lid / 32 + 8·j.
  let kk = lid % BK;
  let r0 = lid / BK;

  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < k; k0 += BK) {
    let kIn = k0 + kk < k;
    for (var j = 0u; j < 8u; j++) {
      let rr = r0 + j * 8u;
      let row = mBase + rr;
      var xv = 0.0;
      if (kIn && row < m) { xv = x[row * k + k0 + kk]; }
      xs[kk * 16u + rr / 4u][rr % 4u] = xv;
      let col = nBase + rr;
      var wv = 0.0;
      if (kIn && col < n) { wv = w[col * k + k0 + kk]; }
      ws[kk * 16u + rr / 4u][rr % 4u] = wv;
    }
    workgroupBarrier();
    for (var t = 0u; t < BK; t++) {
      let a = xs[t * 16u + ty];
      let b = ws[t * 16u + tx];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let row = mBase + ty * 4u + i;
    if (row < m) {
      for (var c = 0u; c < 4u; c++) {
        let col = nBase + tx * 4u + c;
        if (col < n) {
          var v = acc[i][c];
          if (params.hasBias != 0u) { v += bias[col]; }
          y[row * n + col] = v;
        }
      }
    }
  }
}
