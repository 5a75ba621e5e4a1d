// Fused log-softmax + negative log-likelihood, one workgroup (WG) per row of
// logits [rows, vocab]: only the per-position loss leaves the GPU, never the logits.
//   nll[r] = logsumexp(logits[r, :]) − logits[r, target[r]]    (0 where target[r] < 0)
//   argmax[r] = index of the largest logit (for top-1 agreement)
//
// Bindings (group 0):
//   0 uniform  params { rows: u32, vocab: u32, targetOffset: u32 }
//   1 storage  logits array<f32> [rows, vocab]
//   2 storage  targets array<i32> [targetOffset + rows] (−1 = position not scored)
//   3 storage  nll    array<f32> [targetOffset + rows] (written at targetOffset + r)
//   4 storage  argmax array<u32> [targetOffset + rows]
struct Params { rows: u32, vocab: u32, targetOffset: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> nll: array<f32>;
@group(0) @binding(4) var<storage, read_write> argmax: array<u32>;

// Invocations per row (a power of two): wide on GPUs, narrow on CPU adapters (see src/gpu/tuning.ts).
override WG: u32 = 256u;
var<workgroup> redV: array<f32, WG>;
var<workgroup> redI: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let t = lid.x;
  let base = r * p.vocab;
  var best = -3.0e38;
  var bestI = 0u;
  for (var c = t; c < p.vocab; c = c + WG) {
    let z = logits[base + c];
    if (z > best) { best = z; bestI = c; }
  }
  redV[t] = best;
  redI[t] = bestI;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (t < stride) {
      let o = redV[t + stride];
      let oi = redI[t + stride];
      if (o > redV[t] || (o == redV[t] && oi < redI[t])) { redV[t] = o; redI[t] = oi; }
    }
    workgroupBarrier();
  }
  let mx = redV[0];
  let mxI = redI[0];
  workgroupBarrier();
  var s = 0.0;
  for (var c = t; c < p.vocab; c = c + WG) { s = s + exp(logits[base + c] - mx); }
  redV[t] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (t < stride) { redV[t] = redV[t] + redV[t + stride]; }
    workgroupBarrier();
  }
  if (t == 0u) {
    let out = p.targetOffset + r;
    let tgt = targets[out];
    var loss = 0.0;
    if (tgt >= 0) { loss = mx + log(redV[0]) - logits[base + u32(tgt)]; }
    nll[out] = loss;
    argmax[out] = mxI;
  }
}
