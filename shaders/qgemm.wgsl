// qgemm — y = x · Ŵᵀ (+ bias) for many rows of x (prefill, perplexity
// windows), Ŵ dequantized from packed codes as its tile is loaded. Same packed
// format, bindings and Params as qmatmul.wgsl (see there).
//
// 128 × 128 output tiles, 256 invocations, each accumulating 8 × 8 outputs:
// rows {4·ty … 4·ty + 3} ∪ {64 + 4·ty …} and columns {4·tx …} ∪ {64 + 4·tx …}
// (ty = lid / 16, tx = lid % 16), so that a subgroup's reads of the staged
// tiles are consecutive vec4 (no bank conflicts) and each step along K costs 4
// vec4 reads from workgroup memory for 64 multiply-adds (the 64 × 64 kernel of
// qmatmul.wgsl reads 2 for 16). K advances in steps of BK = 16 codes (half a
// 32-code block, inside one group); per step the workgroup stages x[128 × 16]
// and Ŵ[128 × 16] (8 KiB each, k-major), every invocation decoding the 8 codes
// of one row that one step needs (one u32 word at 4 bits). Workgroups:
// ⌈M / 128⌉ · ⌈N / 128⌉, M tiles fastest (Ŵ tiles reused from cache). The
// scheme comes from params, as in qmatmul.wgsl `gemm`.

const WG: u32 = 256u;
const T: u32 = 128u;
const BK: u32 = 16u;

struct Params {
  n: u32,
  k: u32,
  groups: u32,
  rowVec4: u32,
  bits: u32,
  groupSize: u32,
  symmetric: u32,
  hasBias: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read> zeros: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

// k-major: xs[kk · 32 + m / 4][m % 4] = x[mBase + m, k0 + kk]; ws likewise for Ŵ[nBase + n, ·].
var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> ws: array<vec4<f32>, 512>;

fn word(i: u32) -> u32 {
  return codes[i >> 2u][i & 3u];
}

// Code j of the row whose codes start at u32 word `base`, `bits` wide.
fn codeAt(base: u32, j: u32, bits: u32) -> u32 {
  let bit = j * bits;
  let wi = base + (bit >> 5u);
  let off = bit & 31u;
  var v = word(wi) >> off;
  if (off + bits > 32u) { v |= word(wi + 1u) << (32u - off); }
  return v & ((1u << bits) - 1u);
}

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
  let rowWords = params.rowVec4 * 4u;
  let bits = params.bits;
  // Staging: x rows lid / 4 and 64 + lid / 4, vec4 lid % 4 of the step;
  // Ŵ row lid / 2, codes 8 · (lid % 2) … + 7 of the step.
  let xm = lid / 4u;
  let xq = lid % 4u;
  let wn = lid / 2u;
  let wh = lid % 2u;
  let wRow = nBase + wn;
  let wBase = min(wRow, n - 1u) * rowWords;

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
      let gi = min(wRow, n - 1u) * params.groups + k0 / params.groupSize;
      let scale = scales[gi];
      var zero = f32(1u << (bits - 1u));
      if (params.symmetric == 0u) { zero = f32((zeros[gi >> 2u] >> ((gi & 3u) * 8u)) & 0xFFu); }
      let live = wRow < n;
      let j0 = k0 + wh * 8u;
      for (var i = 0u; i < 8u; i++) {
        var w = 0.0;
        if (live) { w = (f32(codeAt(wBase, j0 + i, bits)) - zero) * scale; }
        ws[(wh * 8u + i) * 32u + wn / 4u][wn % 4u] = w;
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
