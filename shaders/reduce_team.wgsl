// Team reductions for the GEMV kernels (qgemv.wgsl, matmul_f32.wgsl): the sum
// over the TPR lanes of a team of each of ROWS partial sums, returned to every
// lane. The host substitutes one of the two bodies below for REDUCE_IMPL (and
// adds `enable subgroups;` for the first): subgroup shuffles, when the
// adapter's smallest subgroup holds a whole team (teams are TPR consecutive
// invocations, TPR a power of two), else a tree in workgroup memory.

//--- subgroup
fn reduceTeam(s: array<f32, ROWS>, lid: u32, lane: u32) -> array<f32, ROWS> {
  var v = s;
  for (var r = 0u; r < ROWS; r++) {
    var t = v[r];
    for (var mask = TPR / 2u; mask > 0u; mask >>= 1u) { t += subgroupShuffleXor(t, mask); }
    v[r] = t;
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
