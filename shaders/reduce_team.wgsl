// Team reductions for the GEMV kernels (qgemv.wgsl, matmul_f32.wgsl): the sum
// over the TPR lanes of a team of each of ROWS partial sums, returned to every
// lane. The host substitutes one of the two bodies below for REDUCE_IMPL (and
// adds `enable subgroups;` for the first): subgroup shuffles where the adapter
// has subgroups of one known size (teams are TPR consecutive invocations, TPR
// a power of two; subgroups are taken to be consecutive invocations, as every
// driver lays out a one-dimensional workgroup), else a tree in workgroup memory.

//--- subgroup
// Shuffles inside each subgroup (SG lanes, the host's override: the adapter's
// subgroup size when it has one size); teams wider than a subgroup then add
// their subgroups' sums through workgroup memory.
override SG: u32 = 32u;
var<workgroup> red: array<f32, (WG / SG) * ROWS>;

fn reduceTeam(s: array<f32, ROWS>, lid: u32, lane: u32) -> array<f32, ROWS> {
  var v = s;
  let inSg = min(TPR, SG);
  for (var r = 0u; r < ROWS; r++) {
    var t = v[r];
    for (var mask = inSg / 2u; mask > 0u; mask >>= 1u) { t += subgroupShuffleXor(t, mask); }
    v[r] = t;
  }
  if (TPR > SG) {
    let slots = WG / SG;
    workgroupBarrier();
    if (lid % SG == 0u) {
      for (var r = 0u; r < ROWS; r++) { red[r * slots + lid / SG] = v[r]; }
    }
    workgroupBarrier();
    let first = (lid / TPR) * (TPR / SG);
    for (var r = 0u; r < ROWS; r++) {
      var t = 0.0;
      for (var j = 0u; j < TPR / SG; j++) { t += red[r * slots + first + j]; }
      v[r] = t;
    }
  }
  return v;
}
//--- workgroup
var<workgroup> red: array<f32, WG * ROWS>;

fn reduceTeam(s: array<f32, ROWS>, lid: u32, lane: u32) -> array<f32, ROWS> {
  for (var r = 0u; r < ROWS; r++) { red[r * WG + lid] = s[r]; }
  for (var stride = TPR / 2u; stride > 0u; stride >>= 1u) {
    workgroupBarrier();
    if (lane < stride) {
      for (var r = 0u; r < ROWS; r++) { red[r * WG + lid] += red[r * WG + lid + stride]; }
    }
  }
  workgroupBarrier();
  var out: array<f32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { out[r] = red[r * WG + lid]; }
  return out;
}
