// KL divergence of a quantized model's next-token distribution from a
// reference (unquantized) one, one workgroup (WG) per row; two entry points
// sharing one binding table:
//
//   logsoftmax (reference forward):  logp[r, c] = z[r, c] − max_c z − log Σ_c exp(z[r, c] − max z)
//                                    refArgmax[targetOffset + r] = argmax_c z[r, c]
//   main       (quantized forward):  kl[targetOffset + r] = Σ_c p(c) (logp[r, c] − log q(c)),
//                                    p = exp(logp), log q = log-softmax of this row's logits
//                                    agree[targetOffset + r] = 1 if argmax q == refArgmax, else 0
//                                    (both 0 where targets[targetOffset + r] < 0)
// Both compute log-softmax with the same reduction in the same order, so a
// model compared with itself gives exactly 0.
//
// Bindings (group 0):
//   0 uniform  params { rows: u32, vocab: u32, targetOffset: u32 }
//   1 storage  logits    array<f32> [rows, vocab] (this head chunk)
//   2 storage  logp      array<f32> [rows, vocab] (the reference's log-probs for the same chunk)
//   3 storage  refArgmax array<u32> [targetOffset + rows]
//   4 storage  targets   array<i32> [targetOffset + rows] (−1 = position not scored)     main only
//   5 storage  kl        array<f32> [targetOffset + rows]                                 main only
//   6 storage  agree     array<u32> [targetOffset + rows]                                 main only
struct Params { rows: u32, vocab: u32, targetOffset: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> logp: array<f32>;
@group(0) @binding(3) var<storage, read_write> refArgmax: array<u32>;
@group(0) @binding(4) var<storage, read> targets: array<i32>;
@group(0) @binding(5) var<storage, read_write> kl: array<f32>;
@group(0) @binding(6) var<storage, read_write> agree: array<u32>;

// Invocations per row (a power of two): wide on GPUs, narrow on CPU adapters (see src/gpu/tuning.ts).
override WG: u32 = 256u;
var<workgroup> redV: array<f32, WG>;
var<workgroup> redI: array<u32, WG>;

struct RowSoftmax { mx: f32, mxI: u32, logSum: f32 }

// max, argmax (lowest index on ties, as nll.wgsl) and log Σ exp(z − max) of logits row `base`.
fn rowSoftmax(base: u32, t: u32) -> RowSoftmax {
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
  let logSum = log(redV[0]);
  workgroupBarrier();
  return RowSoftmax(mx, mxI, logSum);
}

@compute @workgroup_size(WG)
fn logsoftmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let t = lid.x;
  let base = r * p.vocab;
  let sm = rowSoftmax(base, t);
  for (var c = t; c < p.vocab; c = c + WG) { logp[base + c] = logits[base + c] - sm.mx - sm.logSum; }
  if (t == 0u) { refArgmax[p.targetOffset + r] = sm.mxI; }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let t = lid.x;
  let base = r * p.vocab;
  let sm = rowSoftmax(base, t);
  var s = 0.0;
  for (var c = t; c < p.vocab; c = c + WG) {
    let lp = logp[base + c];
    // p · (log p − log q); p underflowing to 0 contributes 0
    s = s + exp(lp) * (lp - (logits[base + c] - sm.mx - sm.logSum));
  }
  redV[t] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (t < stride) { redV[t] = redV[t] + redV[t + stride]; }
    workgroupBarrier();
  }
  if (t == 0u) {
    let out = p.targetOffset + r;
    var d = 0.0;
    var same = 0u;
    if (targets[out] >= 0) {
      d = redV[0];
      same = select(0u, 1u, sm.mxI == refArgmax[out]);
    }
    kl[out] = d;
    agree[out] = same;
  }
}
