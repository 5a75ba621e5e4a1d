// Causal GQA attention over a quantized KV cache: attention.wgsl and
// attention_serial.wgsl with keys and values read from b-bit group-wise codes
// (format: src/core/quant/kv.ts; written by attention_kv_store.wgsl) and
// dequantized as they are read — no f32 copy of the cache exists.
//
//   out[m, h, :] = Σ_{j ≤ pastLen+m} softmax_j(scale · q[m,h,:]·k̂[j,g,:]) · v̂[j,g,:],  g = h / (heads / kvHeads)
//   k̂[j, i] = code(j, i) · s + lo,  (s, lo) = unpack2x16float(kScales[j, i / groupSize])
//
// Bindings (group 0):
//   0 uniform  params { rows (M), heads, kvHeads, headDim (≤ 256), pastLen, scale, groupSize, bits (8 | 4) }
//   1 storage  q       array<f32> [M, heads·headDim]
//   2 storage  kCodes  array<u32> [positions, kvHeads·headDim·bits/32]  (row j = absolute position j)
//   3 storage  kScales array<u32> [positions, kvHeads·headDim/groupSize]
//   4 storage  vCodes  array<u32> (as kCodes)
//   5 storage  vScales array<u32> (as kScales)
//   6 storage  out     array<f32> [M, heads·headDim]
//
// Entry points:
//   main   — one workgroup of TILE invocations per (query row, head), keys in
//            tiles of TILE with an online softmax (attention.wgsl's shape, for GPUs).
//   serial — one invocation per (query row, head), 64 per workgroup, no
//            workgroup memory or barriers (attention_serial.wgsl's shape, for
//            CPU adapters); codes decoded a u32 word at a time.
struct Params { rows: u32, heads: u32, kvHeads: u32, headDim: u32, pastLen: u32, scale: f32, groupSize: u32, bits: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kCodes: array<u32>;
@group(0) @binding(3) var<storage, read> kScales: array<u32>;
@group(0) @binding(4) var<storage, read> vCodes: array<u32>;
@group(0) @binding(5) var<storage, read> vScales: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

override TILE: u32 = 64u;
const NEG: f32 = -3.0e38;

fn kvDim() -> u32 { return p.kvHeads * p.headDim; }

// Code `lane` of a word, as a float.
fn code(word: u32, lane: u32) -> f32 {
  return f32((word >> (lane * p.bits)) & ((1u << p.bits) - 1u));
}

// Element i of cached key row j.
fn keyAt(j: u32, i: u32) -> f32 {
  let per = 32u / p.bits;
  let sl = unpack2x16float(kScales[(j * kvDim() + i) / p.groupSize]);
  return code(kCodes[(j * kvDim() + i) / per], i % per) * sl.x + sl.y;
}

// Element i of cached value row j.
fn valueAt(j: u32, i: u32) -> f32 {
  let per = 32u / p.bits;
  let sl = unpack2x16float(vScales[(j * kvDim() + i) / p.groupSize]);
  return code(vCodes[(j * kvDim() + i) / per], i % per) * sl.x + sl.y;
}

// ---------------------------------------------------------------- main ----

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
      for (var d = 0u; d < hd; d = d + 1u) { s = s + qs[d] * keyAt(j, kvOff + d); }
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
        sum = sum + probs[jj] * valueAt(start + jj, kvOff + d);
      }
      acc[d] = acc[d] * corr + sum;
    }
    runMax = newMax;
    workgroupBarrier();
  }
  for (var d = t; d < hd; d = d + TILE) { out[qBase + d] = acc[d] / runSum; }
}

// -------------------------------------------------------------- serial ----

@compute @workgroup_size(64)
fn serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let item = gid.x + gid.y * nwg.x * 64u;
  if (item >= p.rows * p.heads) { return; }
  let m = item / p.heads;
  let h = item % p.heads;
  let g = h / (p.heads / p.kvHeads);
  let hd = p.headDim;
  let qBase = (m * p.heads + h) * hd;
  let per = 32u / p.bits;
  let words = hd / per;          // code words of one head's slice of a row
  let groups = hd / p.groupSize; // scale groups of that slice
  let wordsPerGroup = p.groupSize / per;
  let rowWords = kvDim() / per;
  let rowGroups = kvDim() / p.groupSize;
  var qp: array<f32, 256>;
  var accp: array<f32, 256>;
  for (var d = 0u; d < hd; d++) {
    qp[d] = q[qBase + d] * p.scale;
    accp[d] = 0.0;
  }
  let keys = p.pastLen + m + 1u;
  var runMax = NEG;
  var runSum = 0.0;
  for (var j = 0u; j < keys; j++) {
    let w0 = j * rowWords + g * words;
    let g0 = j * rowGroups + g * groups;
    // s = Σ_groups (scale · Σ q·code + lo · Σ q)
    var s = 0.0;
    for (var gi = 0u; gi < groups; gi++) {
      let sl = unpack2x16float(kScales[g0 + gi]);
      var dotq = 0.0;
      var sumq = 0.0;
      for (var w = 0u; w < wordsPerGroup; w++) {
        let word = kCodes[w0 + gi * wordsPerGroup + w];
        let d0 = (gi * wordsPerGroup + w) * per;
        for (var i = 0u; i < per; i++) {
          dotq = dotq + qp[d0 + i] * code(word, i);
          sumq = sumq + qp[d0 + i];
        }
      }
      s = s + sl.x * dotq + sl.y * sumq;
    }
    if (s > runMax) {
      let corr = exp(runMax - s);
      runSum = runSum * corr;
      for (var d = 0u; d < hd; d++) { accp[d] = accp[d] * corr; }
      runMax = s;
    }
    let pj = exp(s - runMax);
    runSum = runSum + pj;
    for (var gi = 0u; gi < groups; gi++) {
      let sl = unpack2x16float(vScales[g0 + gi]);
      for (var w = 0u; w < wordsPerGroup; w++) {
        let word = vCodes[w0 + gi * wordsPerGroup + w];
        let d0 = (gi * wordsPerGroup + w) * per;
        for (var i = 0u; i < per; i++) {
          accp[d0 + i] = accp[d0 + i] + pj * (code(word, i) * sl.x + sl.y);
        }
      }
    }
  }
  for (var d = 0u; d < hd; d++) { out[qBase + d] = accp[d] / runSum; }
}
