// Causal multi-head attention with grouped-query heads, one workgroup (TILE
// invocations) per (query row, head), streaming over keys in tiles of TILE
// with an online softmax (running max and sum), so any sequence length fits in
// a fixed amount of workgroup memory. TILE is 64 on GPUs and small on CPU
// adapters (src/gpu/tuning.ts). Invocation t owns output dims t, t+TILE, ...
//
//   out[m, h, :] = Σ_{j ≤ pastLen+m} softmax_j(scale · q[m,h,:]·k[j,g,:]) · v[j,g,:]
//   with g = h / (heads / kvHeads) (the key/value head shared by the group).
//
// Bindings (group 0):
//   0 uniform  params { rows (M), heads, kvHeads, headDim (≤ 256), pastLen, scale }
//   1 storage  q   array<f32> [M, heads·headDim]        (query rows at positions pastLen + m)
//   2 storage  k   array<f32> [positions, kvHeads·headDim] (row j = absolute position j)
//   3 storage  v   array<f32> [positions, kvHeads·headDim]
//   4 storage  out array<f32> [M, heads·headDim]
struct Params { rows: u32, heads: u32, kvHeads: u32, headDim: u32, pastLen: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override TILE: u32 = 64u;
const NEG: f32 = -3.0e38;
var<workgroup> qs: array<f32, 256>;
var<workgroup> acc: array<f32, 256>;
var<workgroup> probs: array<f32, TILE>;
var<workgroup> red: array<f32, TILE>;

fn reduceMax(t: u32, value: f32) -> f32 {
  red[t] = value;
  workgroupBarrier();
  for (var stride = TILE / 2u; stride > 0u; stride = stride / 2u) {
    if (t < stride) { red[t] = max(red[t], red[t + stride]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduceSum(t: u32, value: f32) -> f32 {
  red[t] = value;
  workgroupBarrier();
  for (var stride = TILE / 2u; stride > 0u; stride = stride / 2u) {
    if (t < stride) { red[t] = red[t] + red[t + stride]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(TILE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let item = wid.x + wid.y * nwg.x;
  if (item >= p.rows * p.heads) { return; }
  let t = lid.x;
  let m = item / p.heads;
  let h = item % p.heads;
  let g = h / (p.heads / p.kvHeads);
  let hd = p.headDim;
  let qBase = (m * p.heads + h) * hd;
  let kvStride = p.kvHeads * hd;
  let kvOff = g * hd;
  for (var d = t; d < hd; d = d + TILE) {
    qs[d] = q[qBase + d] * p.scale;
    acc[d] = 0.0;
  }
  workgroupBarrier();

  let keys = p.pastLen + m + 1u;
  var runMax = NEG;
  var runSum = 0.0;
  for (var start = 0u; start < keys; start = start + TILE) {
    let j = start + t;
    var s = NEG;
    if (j < keys) {
      s = 0.0;
      let kb = j * kvStride + kvOff;
      for (var d = 0u; d < hd; d = d + 1u) { s = s + qs[d] * k[kb + d]; }
    }
    let newMax = max(runMax, reduceMax(t, s));
    var pj = 0.0;
    if (j < keys) { pj = exp(s - newMax); }
    probs[t] = pj;
    let tileSum = reduceSum(t, pj);
    let corr = exp(runMax - newMax);
    runSum = runSum * corr + tileSum;
    let count = min(TILE, keys - start);
    for (var d = t; d < hd; d = d + TILE) {
      var sum = 0.0;
      for (var jj = 0u; jj < count; jj = jj + 1u) {
        sum = sum + probs[jj] * v[(start + jj) * kvStride + kvOff + d];
      }
      acc[d] = acc[d] * corr + sum;
    }
    runMax = newMax;
    workgroupBarrier();
  }
  for (var d = t; d < hd; d = d + TILE) { out[qBase + d] = acc[d] / runSum; }
}
