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
//   5 x4: array<vec4<f32>>  6 w4: array<vec4<f32>>   (gemv4 and gemmCpu4 only:
//     the same x and W seen as vec4, for K a multiple of 4)
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
//   gemmCpu4 / gemmCpu — for CPU adapters (SwiftShader), any M: no workgroup
//           memory and no barriers (a CPU driver runs a workgroup as fibers and
//           switches through all of them at every barrier). One invocation
//           computes a CPU_BM × CPU_BN = 32 × 16 block of y straight from
//           storage, vec4 loads for K % 4 = 0 (gemmCpu4, bindings 5 and 6),
//           scalar loads for any K (gemmCpu). 64 invocations per workgroup;
//           workgroups: ⌈⌈M / 32⌉ · ⌈N / 16⌉ / 64⌉, W blocks fastest.
//
// Specialization: the gemv kernels by override constants HAS_BIAS and TPR (team
// width, a power of two from 8 to 256); gemm and the CPU kernels read
// params.hasBias, so one pipeline serves every layer (compiling one takes
// seconds on some drivers).

override HAS_BIAS: bool = false;
override TPR: u32 = 64u;

const WG: u32 = 256u;
const ROWS: u32 = 4u;
const TILE: u32 = 64u;
const BK: u32 = 32u;

struct Params {
  n: u32,
  k: u32,
  hasBias: u32,  // gemm, gemmCpu4, gemmCpu: 1 = add bias
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

// ------------------------------------------------------------- gemmCpu ----

// On a CPU driver a storage load is a gather, lane by lane, so these kernels
// give each invocation a large block of y (CPU_BM × CPU_BN = 32 × 16): per
// step of 4 along K it loads 32 + 16 vec4 and does 2048 multiply-adds. Written
// out by hand, with no array indexed in a loop (a CPU driver keeps such an
// array in memory), and no workgroup memory or barriers.
const CPU_WG: u32 = 64u;
const CPU_BM: u32 = 32u;  // rows of x per invocation
const CPU_BN: u32 = 16u;  // rows of W (output features) per invocation

// The invocation's block: first x row and first W row, or false past the end.
// W blocks fastest: the lanes a CPU driver runs together share their x rows.
struct CpuBlock { m0: u32, n0: u32, valid: bool }

fn cpuBlock(lid: u32, wid: vec3<u32>, nwg: vec3<u32>, m: u32) -> CpuBlock {
  let blocksM = (m + CPU_BM - 1u) / CPU_BM;
  let blocksN = (params.n + CPU_BN - 1u) / CPU_BN;
  let item = (wid.x + wid.y * nwg.x) * CPU_WG + lid;
  return CpuBlock((item / blocksN) * CPU_BM, (item % blocksN) * CPU_BN, item < blocksM * blocksN);
}

// The 16 outputs of one x row: c_j = y[row, n0 + 4j … n0 + 4j + 3].
struct Acc { c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32> }

// The block's 16 W rows at one step of 4 along K: column r of q_j is row 4j + r.
struct WStep { q0: mat4x4<f32>, q1: mat4x4<f32>, q2: mat4x4<f32>, q3: mat4x4<f32> }

// (v·q[0], v·q[1], v·q[2], v·q[3]); explicit dots compile to better CPU code than v * q.
fn dot4(v: vec4<f32>, q: mat4x4<f32>) -> vec4<f32> {
  return vec4<f32>(dot(v, q[0]), dot(v, q[1]), dot(v, q[2]), dot(v, q[3]));
}

fn mac4(a: Acc, xv: vec4<f32>, w: WStep) -> Acc {
  return Acc(a.c0 + dot4(xv, w.q0), a.c1 + dot4(xv, w.q1), a.c2 + dot4(xv, w.q2), a.c3 + dot4(xv, w.q3));
}

// The block's 16 W values at one k (scalar kernel): c_j = rows 4j … 4j + 3.
struct WStep1 { c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32> }

fn mac1(a: Acc, xs: f32, w: WStep1) -> Acc {
  return Acc(a.c0 + xs * w.c0, a.c1 + xs * w.c1, a.c2 + xs * w.c2, a.c3 + xs * w.c3);
}

// y[row, n0 + j] = output j (+ bias), the parts inside [M, N].
fn storeCpuRow(a: Acc, row: u32, n0: u32, m: u32) {
  if (row >= m) { return; }
  let n = params.n;
  let v = mat4x4<f32>(a.c0, a.c1, a.c2, a.c3);
  for (var j = 0u; j < CPU_BN; j++) {
    let col = n0 + j;
    if (col < n) {
      var o = v[j / 4u][j % 4u];
      if (params.hasBias != 0u) { o += bias[col]; }
      y[row * n + col] = o;
    }
  }
}

@compute @workgroup_size(CPU_WG)
fn gemmCpu4(@builtin(local_invocation_index) lid: u32,
            @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let kv = params.k / 4u;
  let m = arrayLength(&x4) / kv;
  let blk = cpuBlock(lid, wid, nwg, m);
  if (!blk.valid) { return; }
  // Rows past M or N repeat the last row (in bounds, never written).
  let xo0 = min(blk.m0 + 0u, m - 1u) * kv;
  let xo1 = min(blk.m0 + 1u, m - 1u) * kv;
  let xo2 = min(blk.m0 + 2u, m - 1u) * kv;
  let xo3 = min(blk.m0 + 3u, m - 1u) * kv;
  let xo4 = min(blk.m0 + 4u, m - 1u) * kv;
  let xo5 = min(blk.m0 + 5u, m - 1u) * kv;
  let xo6 = min(blk.m0 + 6u, m - 1u) * kv;
  let xo7 = min(blk.m0 + 7u, m - 1u) * kv;
  let xo8 = min(blk.m0 + 8u, m - 1u) * kv;
  let xo9 = min(blk.m0 + 9u, m - 1u) * kv;
  let xo10 = min(blk.m0 + 10u, m - 1u) * kv;
  let xo11 = min(blk.m0 + 11u, m - 1u) * kv;
  let xo12 = min(blk.m0 + 12u, m - 1u) * kv;
  let xo13 = min(blk.m0 + 13u, m - 1u) * kv;
  let xo14 = min(blk.m0 + 14u, m - 1u) * kv;
  let xo15 = min(blk.m0 + 15u, m - 1u) * kv;
  let xo16 = min(blk.m0 + 16u, m - 1u) * kv;
  let xo17 = min(blk.m0 + 17u, m - 1u) * kv;
  let xo18 = min(blk.m0 + 18u, m - 1u) * kv;
  let xo19 = min(blk.m0 + 19u, m - 1u) * kv;
  let xo20 = min(blk.m0 + 20u, m - 1u) * kv;
  let xo21 = min(blk.m0 + 21u, m - 1u) * kv;
  let xo22 = min(blk.m0 + 22u, m - 1u) * kv;
  let xo23 = min(blk.m0 + 23u, m - 1u) * kv;
  let xo24 = min(blk.m0 + 24u, m - 1u) * kv;
  let xo25 = min(blk.m0 + 25u, m - 1u) * kv;
  let xo26 = min(blk.m0 + 26u, m - 1u) * kv;
  let xo27 = min(blk.m0 + 27u, m - 1u) * kv;
  let xo28 = min(blk.m0 + 28u, m - 1u) * kv;
  let xo29 = min(blk.m0 + 29u, m - 1u) * kv;
  let xo30 = min(blk.m0 + 30u, m - 1u) * kv;
  let xo31 = min(blk.m0 + 31u, m - 1u) * kv;
  let wo0 = min(blk.n0 + 0u, n - 1u) * kv;
  let wo1 = min(blk.n0 + 1u, n - 1u) * kv;
  let wo2 = min(blk.n0 + 2u, n - 1u) * kv;
  let wo3 = min(blk.n0 + 3u, n - 1u) * kv;
  let wo4 = min(blk.n0 + 4u, n - 1u) * kv;
  let wo5 = min(blk.n0 + 5u, n - 1u) * kv;
  let wo6 = min(blk.n0 + 6u, n - 1u) * kv;
  let wo7 = min(blk.n0 + 7u, n - 1u) * kv;
  let wo8 = min(blk.n0 + 8u, n - 1u) * kv;
  let wo9 = min(blk.n0 + 9u, n - 1u) * kv;
  let wo10 = min(blk.n0 + 10u, n - 1u) * kv;
  let wo11 = min(blk.n0 + 11u, n - 1u) * kv;
  let wo12 = min(blk.n0 + 12u, n - 1u) * kv;
  let wo13 = min(blk.n0 + 13u, n - 1u) * kv;
  let wo14 = min(blk.n0 + 14u, n - 1u) * kv;
  let wo15 = min(blk.n0 + 15u, n - 1u) * kv;
  var a0 = Acc();
  var a1 = Acc();
  var a2 = Acc();
  var a3 = Acc();
  var a4 = Acc();
  var a5 = Acc();
  var a6 = Acc();
  var a7 = Acc();
  var a8 = Acc();
  var a9 = Acc();
  var a10 = Acc();
  var a11 = Acc();
  var a12 = Acc();
  var a13 = Acc();
  var a14 = Acc();
  var a15 = Acc();
  var a16 = Acc();
  var a17 = Acc();
  var a18 = Acc();
  var a19 = Acc();
  var a20 = Acc();
  var a21 = Acc();
  var a22 = Acc();
  var a23 = Acc();
  var a24 = Acc();
  var a25 = Acc();
  var a26 = Acc();
  var a27 = Acc();
  var a28 = Acc();
  var a29 = Acc();
  var a30 = Acc();
  var a31 = Acc();
  for (var t = 0u; t < kv; t++) {
    let w = WStep(mat4x4<f32>(w4[wo0 + t], w4[wo1 + t], w4[wo2 + t], w4[wo3 + t]),
                  mat4x4<f32>(w4[wo4 + t], w4[wo5 + t], w4[wo6 + t], w4[wo7 + t]),
                  mat4x4<f32>(w4[wo8 + t], w4[wo9 + t], w4[wo10 + t], w4[wo11 + t]),
                  mat4x4<f32>(w4[wo12 + t], w4[wo13 + t], w4[wo14 + t], w4[wo15 + t]));
    a0 = mac4(a0, x4[xo0 + t], w);
    a1 = mac4(a1, x4[xo1 + t], w);
    a2 = mac4(a2, x4[xo2 + t], w);
    a3 = mac4(a3, x4[xo3 + t], w);
    a4 = mac4(a4, x4[xo4 + t], w);
    a5 = mac4(a5, x4[xo5 + t], w);
    a6 = mac4(a6, x4[xo6 + t], w);
    a7 = mac4(a7, x4[xo7 + t], w);
    a8 = mac4(a8, x4[xo8 + t], w);
    a9 = mac4(a9, x4[xo9 + t], w);
    a10 = mac4(a10, x4[xo10 + t], w);
    a11 = mac4(a11, x4[xo11 + t], w);
    a12 = mac4(a12, x4[xo12 + t], w);
    a13 = mac4(a13, x4[xo13 + t], w);
    a14 = mac4(a14, x4[xo14 + t], w);
    a15 = mac4(a15, x4[xo15 + t], w);
    a16 = mac4(a16, x4[xo16 + t], w);
    a17 = mac4(a17, x4[xo17 + t], w);
    a18 = mac4(a18, x4[xo18 + t], w);
    a19 = mac4(a19, x4[xo19 + t], w);
    a20 = mac4(a20, x4[xo20 + t], w);
    a21 = mac4(a21, x4[xo21 + t], w);
    a22 = mac4(a22, x4[xo22 + t], w);
    a23 = mac4(a23, x4[xo23 + t], w);
    a24 = mac4(a24, x4[xo24 + t], w);
    a25 = mac4(a25, x4[xo25 + t], w);
    a26 = mac4(a26, x4[xo26 + t], w);
    a27 = mac4(a27, x4[xo27 + t], w);
    a28 = mac4(a28, x4[xo28 + t], w);
    a29 = mac4(a29, x4[xo29 + t], w);
    a30 = mac4(a30, x4[xo30 + t], w);
    a31 = mac4(a31, x4[xo31 + t], w);
  }
  storeCpuRow(a0, blk.m0 + 0u, blk.n0, m);
  storeCpuRow(a1, blk.m0 + 1u, blk.n0, m);
  storeCpuRow(a2, blk.m0 + 2u, blk.n0, m);
  storeCpuRow(a3, blk.m0 + 3u, blk.n0, m);
  storeCpuRow(a4, blk.m0 + 4u, blk.n0, m);
  storeCpuRow(a5, blk.m0 + 5u, blk.n0, m);
  storeCpuRow(a6, blk.m0 + 6u, blk.n0, m);
  storeCpuRow(a7, blk.m0 + 7u, blk.n0, m);
  storeCpuRow(a8, blk.m0 + 8u, blk.n0, m);
  storeCpuRow(a9, blk.m0 + 9u, blk.n0, m);
  storeCpuRow(a10, blk.m0 + 10u, blk.n0, m);
  storeCpuRow(a11, blk.m0 + 11u, blk.n0, m);
  storeCpuRow(a12, blk.m0 + 12u, blk.n0, m);
  storeCpuRow(a13, blk.m0 + 13u, blk.n0, m);
  storeCpuRow(a14, blk.m0 + 14u, blk.n0, m);
  storeCpuRow(a15, blk.m0 + 15u, blk.n0, m);
  storeCpuRow(a16, blk.m0 + 16u, blk.n0, m);
  storeCpuRow(a17, blk.m0 + 17u, blk.n0, m);
  storeCpuRow(a18, blk.m0 + 18u, blk.n0, m);
  storeCpuRow(a19, blk.m0 + 19u, blk.n0, m);
  storeCpuRow(a20, blk.m0 + 20u, blk.n0, m);
  storeCpuRow(a21, blk.m0 + 21u, blk.n0, m);
  storeCpuRow(a22, blk.m0 + 22u, blk.n0, m);
  storeCpuRow(a23, blk.m0 + 23u, blk.n0, m);
  storeCpuRow(a24, blk.m0 + 24u, blk.n0, m);
  storeCpuRow(a25, blk.m0 + 25u, blk.n0, m);
  storeCpuRow(a26, blk.m0 + 26u, blk.n0, m);
  storeCpuRow(a27, blk.m0 + 27u, blk.n0, m);
  storeCpuRow(a28, blk.m0 + 28u, blk.n0, m);
  storeCpuRow(a29, blk.m0 + 29u, blk.n0, m);
  storeCpuRow(a30, blk.m0 + 30u, blk.n0, m);
  storeCpuRow(a31, blk.m0 + 31u, blk.n0, m);
}

@compute @workgroup_size(CPU_WG)
fn gemmCpu(@builtin(local_invocation_index) lid: u32,
           @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let k = params.k;
  let m = arrayLength(&x) / k;
  let blk = cpuBlock(lid, wid, nwg, m);
  if (!blk.valid) { return; }
  // Rows past M or N repeat the last row (in bounds, never written).
  let xo0 = min(blk.m0 + 0u, m - 1u) * k;
  let xo1 = min(blk.m0 + 1u, m - 1u) * k;
  let xo2 = min(blk.m0 + 2u, m - 1u) * k;
  let xo3 = min(blk.m0 + 3u, m - 1u) * k;
  let xo4 = min(blk.m0 + 4u, m - 1u) * k;
  let xo5 = min(blk.m0 + 5u, m - 1u) * k;
  let xo6 = min(blk.m0 + 6u, m - 1u) * k;
  let xo7 = min(blk.m0 + 7u, m - 1u) * k;
  let xo8 = min(blk.m0 + 8u, m - 1u) * k;
  let xo9 = min(blk.m0 + 9u, m - 1u) * k;
  let xo10 = min(blk.m0 + 10u, m - 1u) * k;
  let xo11 = min(blk.m0 + 11u, m - 1u) * k;
  let xo12 = min(blk.m0 + 12u, m - 1u) * k;
  let xo13 = min(blk.m0 + 13u, m - 1u) * k;
  let xo14 = min(blk.m0 + 14u, m - 1u) * k;
  let xo15 = min(blk.m0 + 15u, m - 1u) * k;
  let xo16 = min(blk.m0 + 16u, m - 1u) * k;
  let xo17 = min(blk.m0 + 17u, m - 1u) * k;
  let xo18 = min(blk.m0 + 18u, m - 1u) * k;
  let xo19 = min(blk.m0 + 19u, m - 1u) * k;
  let xo20 = min(blk.m0 + 20u, m - 1u) * k;
  let xo21 = min(blk.m0 + 21u, m - 1u) * k;
  let xo22 = min(blk.m0 + 22u, m - 1u) * k;
  let xo23 = min(blk.m0 + 23u, m - 1u) * k;
  let xo24 = min(blk.m0 + 24u, m - 1u) * k;
  let xo25 = min(blk.m0 + 25u, m - 1u) * k;
  let xo26 = min(blk.m0 + 26u, m - 1u) * k;
  let xo27 = min(blk.m0 + 27u, m - 1u) * k;
  let xo28 = min(blk.m0 + 28u, m - 1u) * k;
  let xo29 = min(blk.m0 + 29u, m - 1u) * k;
  let xo30 = min(blk.m0 + 30u, m - 1u) * k;
  let xo31 = min(blk.m0 + 31u, m - 1u) * k;
  let wo0 = min(blk.n0 + 0u, n - 1u) * k;
  let wo1 = min(blk.n0 + 1u, n - 1u) * k;
  let wo2 = min(blk.n0 + 2u, n - 1u) * k;
  let wo3 = min(blk.n0 + 3u, n - 1u) * k;
  let wo4 = min(blk.n0 + 4u, n - 1u) * k;
  let wo5 = min(blk.n0 + 5u, n - 1u) * k;
  let wo6 = min(blk.n0 + 6u, n - 1u) * k;
  let wo7 = min(blk.n0 + 7u, n - 1u) * k;
  let wo8 = min(blk.n0 + 8u, n - 1u) * k;
  let wo9 = min(blk.n0 + 9u, n - 1u) * k;
  let wo10 = min(blk.n0 + 10u, n - 1u) * k;
  let wo11 = min(blk.n0 + 11u, n - 1u) * k;
  let wo12 = min(blk.n0 + 12u, n - 1u) * k;
  let wo13 = min(blk.n0 + 13u, n - 1u) * k;
  let wo14 = min(blk.n0 + 14u, n - 1u) * k;
  let wo15 = min(blk.n0 + 15u, n - 1u) * k;
  var a0 = Acc();
  var a1 = Acc();
  var a2 = Acc();
  var a3 = Acc();
  var a4 = Acc();
  var a5 = Acc();
  var a6 = Acc();
  var a7 = Acc();
  var a8 = Acc();
  var a9 = Acc();
  var a10 = Acc();
  var a11 = Acc();
  var a12 = Acc();
  var a13 = Acc();
  var a14 = Acc();
  var a15 = Acc();
  var a16 = Acc();
  var a17 = Acc();
  var a18 = Acc();
  var a19 = Acc();
  var a20 = Acc();
  var a21 = Acc();
  var a22 = Acc();
  var a23 = Acc();
  var a24 = Acc();
  var a25 = Acc();
  var a26 = Acc();
  var a27 = Acc();
  var a28 = Acc();
  var a29 = Acc();
  var a30 = Acc();
  var a31 = Acc();
  for (var t = 0u; t < k; t++) {
    let w = WStep1(vec4<f32>(w[wo0 + t], w[wo1 + t], w[wo2 + t], w[wo3 + t]),
                   vec4<f32>(w[wo4 + t], w[wo5 + t], w[wo6 + t], w[wo7 + t]),
                   vec4<f32>(w[wo8 + t], w[wo9 + t], w[wo10 + t], w[wo11 + t]),
                   vec4<f32>(w[wo12 + t], w[wo13 + t], w[wo14 + t], w[wo15 + t]));
    a0 = mac1(a0, x[xo0 + t], w);
    a1 = mac1(a1, x[xo1 + t], w);
    a2 = mac1(a2, x[xo2 + t], w);
    a3 = mac1(a3, x[xo3 + t], w);
    a4 = mac1(a4, x[xo4 + t], w);
    a5 = mac1(a5, x[xo5 + t], w);
    a6 = mac1(a6, x[xo6 + t], w);
    a7 = mac1(a7, x[xo7 + t], w);
    a8 = mac1(a8, x[xo8 + t], w);
    a9 = mac1(a9, x[xo9 + t], w);
    a10 = mac1(a10, x[xo10 + t], w);
    a11 = mac1(a11, x[xo11 + t], w);
    a12 = mac1(a12, x[xo12 + t], w);
    a13 = mac1(a13, x[xo13 + t], w);
    a14 = mac1(a14, x[xo14 + t], w);
    a15 = mac1(a15, x[xo15 + t], w);
    a16 = mac1(a16, x[xo16 + t], w);
    a17 = mac1(a17, x[xo17 + t], w);
    a18 = mac1(a18, x[xo18 + t], w);
    a19 = mac1(a19, x[xo19 + t], w);
    a20 = mac1(a20, x[xo20 + t], w);
    a21 = mac1(a21, x[xo21 + t], w);
    a22 = mac1(a22, x[xo22 + t], w);
    a23 = mac1(a23, x[xo23 + t], w);
    a24 = mac1(a24, x[xo24 + t], w);
    a25 = mac1(a25, x[xo25 + t], w);
    a26 = mac1(a26, x[xo26 + t], w);
    a27 = mac1(a27, x[xo27 + t], w);
    a28 = mac1(a28, x[xo28 + t], w);
    a29 = mac1(a29, x[xo29 + t], w);
    a30 = mac1(a30, x[xo30 + t], w);
    a31 = mac1(a31, x[xo31 + t], w);
  }
  storeCpuRow(a0, blk.m0 + 0u, blk.n0, m);
  storeCpuRow(a1, blk.m0 + 1u, blk.n0, m);
  storeCpuRow(a2, blk.m0 + 2u, blk.n0, m);
  storeCpuRow(a3, blk.m0 + 3u, blk.n0, m);
  storeCpuRow(a4, blk.m0 + 4u, blk.n0, m);
  storeCpuRow(a5, blk.m0 + 5u, blk.n0, m);
  storeCpuRow(a6, blk.m0 + 6u, blk.n0, m);
  storeCpuRow(a7, blk.m0 + 7u, blk.n0, m);
  storeCpuRow(a8, blk.m0 + 8u, blk.n0, m);
  storeCpuRow(a9, blk.m0 + 9u, blk.n0, m);
  storeCpuRow(a10, blk.m0 + 10u, blk.n0, m);
  storeCpuRow(a11, blk.m0 + 11u, blk.n0, m);
  storeCpuRow(a12, blk.m0 + 12u, blk.n0, m);
  storeCpuRow(a13, blk.m0 + 13u, blk.n0, m);
  storeCpuRow(a14, blk.m0 + 14u, blk.n0, m);
  storeCpuRow(a15, blk.m0 + 15u, blk.n0, m);
  storeCpuRow(a16, blk.m0 + 16u, blk.n0, m);
  storeCpuRow(a17, blk.m0 + 17u, blk.n0, m);
  storeCpuRow(a18, blk.m0 + 18u, blk.n0, m);
  storeCpuRow(a19, blk.m0 + 19u, blk.n0, m);
  storeCpuRow(a20, blk.m0 + 20u, blk.n0, m);
  storeCpuRow(a21, blk.m0 + 21u, blk.n0, m);
  storeCpuRow(a22, blk.m0 + 22u, blk.n0, m);
  storeCpuRow(a23, blk.m0 + 23u, blk.n0, m);
  storeCpuRow(a24, blk.m0 + 24u, blk.n0, m);
  storeCpuRow(a25, blk.m0 + 25u, blk.n0, m);
  storeCpuRow(a26, blk.m0 + 26u, blk.n0, m);
  storeCpuRow(a27, blk.m0 + 27u, blk.n0, m);
  storeCpuRow(a28, blk.m0 + 28u, blk.n0, m);
  storeCpuRow(a29, blk.m0 + 29u, blk.n0, m);
  storeCpuRow(a30, blk.m0 + 30u, blk.n0, m);
  storeCpuRow(a31, blk.m0 + 31u, blk.n0, m);
}
