// gemv_f32 — the decode GEMV of unquantized layers, y = x · Wᵀ (+ bias), for
// K a multiple of 4 and a few rows of x. Same bindings and Params as
// matmul_f32.wgsl (x and W as vec4: bindings 5 and 6).
//
// A team of TPR lanes owns ROWS consecutive rows of W; lanes walk the rows
// vec4 after vec4 (a subgroup reads 512 contiguous bytes of a row per load),
// two steps per iteration so that 2·ROWS independent 16-byte loads are in
// flight per lane, and each x vec4 serves the ROWS rows. The team reduction is
// substituted for REDUCE_IMPL (subgroup shuffles or a workgroup-memory tree,
// see reduce_team.wgsl); WG and ROWS are substituted, HAS_BIAS and TPR are
// override constants. Rows past N repeat the last row (never written).

override HAS_BIAS: bool = false;
override TPR: u32 = 32u;

const WG: u32 = 256u;
const ROWS: u32 = 4u;

struct Params {
  n: u32,
  k: u32,
  hasBias: u32,
  pad: u32,
}

@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> w4: array<vec4<f32>>;

REDUCE_IMPL

@compute @workgroup_size(WG)
fn gemv(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let kv = params.k / 4u;
  let m = arrayLength(&x4) / kv;
  let flat = wid.x + wid.y * nwg.x;
  let lane = lid % TPR;
  let row0 = (flat * (WG / TPR) + lid / TPR) * ROWS;
  var base: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { base[r] = min(row0 + r, n - 1u) * kv; }
  for (var mi = 0u; mi < m; mi++) {
    let xb = mi * kv;
    var acc: array<vec4<f32>, ROWS>;
    for (var r = 0u; r < ROWS; r++) { acc[r] = vec4<f32>(0.0); }
    var i = lane;
    for (; i + TPR < kv; i += 2u * TPR) {
      let xa = x4[xb + i];
      let xc = x4[xb + i + TPR];
      var wa: array<vec4<f32>, ROWS>;
      var wc: array<vec4<f32>, ROWS>;
      for (var r = 0u; r < ROWS; r++) { wa[r] = w4[base[r] + i]; wc[r] = w4[base[r] + i + TPR]; }
      for (var r = 0u; r < ROWS; r++) { acc[r] += wa[r] * xa + wc[r] * xc; }
    }
    if (i < kv) {
      let xa = x4[xb + i];
      for (var r = 0u; r < ROWS; r++) { acc[r] += w4[base[r] + i] * xa; }
    }
    var sums: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) { sums[r] = dot(acc[r], vec4<f32>(1.0)); }
    let total = reduceTeam(sums, lid, lane);
    if (lane == 0u) {
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
}
