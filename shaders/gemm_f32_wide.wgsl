// gemm_f32_wide — the unquantized linear layer for many rows of x, y = x · Wᵀ
// (+ bias), K a multiple of 16: the 128 × 128-tile kernel of qgemm.wgsl (see
// there: 8 × 8 outputs per invocation, BK = 16, k-major staged tiles) with W
// read as f32 (two vec4 of one row per invocation and step). Bindings as in
// matmul_f32.wgsl's vec4 kernels: x and W as vec4 (5, 6), bias 2, y 3, params 4.

const WG: u32 = 256u;
const T: u32 = 128u;
const BK: u32 = 16u;

struct Params {
  n: u32,
  k: u32,
  hasBias: u32,
  pad: u32,
}

@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> w4: array<vec4<f32>>;

var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> ws: array<vec4<f32>, 512>;

@compute @workgroup_size(WG)
fn gemm(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = params.n;
  let k = params.k;
  let m = arrayLength(&x) * 4u / k;
  let tilesM = (m + T - 1u) / T;
  let tilesN = (n + T - 1u) / T;
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= tilesM * tilesN) { return; }
  let mBase = (flat % tilesM) * T;
  let nBase = (flat / tilesM) * T;
  let tx = lid % 16u;
  let ty = lid / 16u;
  let xRow = k / 4u;
  // Staging: x rows lid / 4 and 64 + lid / 4, vec4 lid % 4 of the step;
  // W row lid / 2, inputs 8 · (lid % 2) … + 7 of the step.
  let xm = lid / 4u;
  let xq = lid % 4u;
  let wn = lid / 2u;
  let wh = lid % 2u;
  let wRow = nBase + wn;
  let wBase = min(wRow, n - 1u) * xRow;

  var acc: array<vec4<f32>, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < k; k0 += BK) {
    for (var h = 0u; h < 2u; h++) {
      let mm = xm + 64u * h;
      let row = mBase + mm;
      var v = vec4<f32>(0.0);
      if (row < m) { v = x[row * xRow + k0 / 4u + xq]; }
      for (var c = 0u; c < 4u; c++) { xs[(xq * 4u + c) * 32u + mm / 4u][mm % 4u] = v[c]; }
    }
    {
      let live = wRow < n;
      for (var q = 0u; q < 2u; q++) {
        var v = vec4<f32>(0.0);
        if (live) { v = w4[wBase + k0 / 4u + wh * 2u + q]; }
        for (var c = 0u; c < 4u; c++) { ws[(wh * 8u + q * 4u + c) * 32u + wn / 4u][wn % 4u] = v[c]; }
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a0 = xs[kk * 32u + ty];
      let a1 = xs[kk * 32u + 16u + ty];
      let b0 = ws[kk * 32u + tx];
      let b1 = ws[kk * 32u + 16u + tx];
      acc[0] += a0.x * b0; acc[1] += a0.y * b0; acc[2] += a0.z * b0; acc[3] += a0.w * b0;
      acc[4] += a0.x * b1; acc[5] += a0.y * b1; acc[6] += a0.z * b1; acc[7] += a0.w * b1;
      acc[8] += a1.x * b0; acc[9] += a1.y * b0; acc[10] += a1.z * b0; acc[11] += a1.w * b0;
      acc[12] += a1.x * b1; acc[13] += a1.y * b1; acc[14] += a1.z * b1; acc[15] += a1.w * b1;
    }
    workgroupBarrier();
  }

  // acc[8·hm + 4·hn + i][c] = y[mBase + 64·hm + 4·ty + i, nBase + 64·hn + 4·tx + c]
  for (var hm = 0u; hm < 2u; hm++) {
    for (var i = 0u; i < 4u; i++) {
      let row = mBase + 64u * hm + 4u * ty + i;
      if (row < m) {
        for (var hn = 0u; hn < 2u; hn++) {
          let a = acc[8u * hm + 4u * hn + i];
          for (var c = 0u; c < 4u; c++) {
            let col = nBase + 64u * hn + 4u * tx + c;
            if (col < n) {
              var v = a[c];
              if (params.hasBias != 0u) { v += bias[col]; }
              y[row * n + col] = v;
            }
          }
        }
      }
    }
  }
}
