// Causal GQA attention, one invocation per (query row, head), no workgroup
// memory and no barriers: the same function as attention.wgsl, shaped for CPU
// adapters (SwiftShader), where barriers cost a fiber switch per invocation
// and vec4 loads amortize the bounds checks. Keys are visited once with an
// online softmax; the running output is rescaled only when the maximum grows.
//
//   out[m, h, :] = Σ_{j ≤ pastLen+m} softmax_j(scale · q[m,h,:]·k[j,g,:]) · v[j,g,:],  g = h / (heads / kvHeads)
//
// Bindings (group 0), all vectors of 4 floats (headDim must be a multiple of 4, ≤ 256):
//   0 uniform  params { rows (M), heads, kvHeads, headDim, pastLen, scale }
//   1 storage  q   [M, heads·headDim/4]
//   2 storage  k   [positions, kvHeads·headDim/4]
//   3 storage  v   [positions, kvHeads·headDim/4]
//   4 storage  out [M, heads·headDim/4]
struct Params { rows: u32, heads: u32, kvHeads: u32, headDim: u32, pastLen: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let item = gid.x + gid.y * nwg.x * 64u;
  if (item >= p.rows * p.heads) { return; }
  let m = item / p.heads;
  let h = item % p.heads;
  let g = h / (p.heads / p.kvHeads);
  let hv = p.headDim / 4u;
  let qBase = (m * p.heads + h) * hv;
  var qv: array<vec4<f32>, 64>;
  var acc: array<vec4<f32>, 64>;
  for (var i = 0u; i < hv; i = i + 1u) {
    qv[i] = q[qBase + i] * p.scale;
    acc[i] = vec4<f32>(0.0);
  }
  let keys = p.pastLen + m + 1u;
  var runMax = -3.0e38;
  var runSum = 0.0;
  for (var j = 0u; j < keys; j = j + 1u) {
    let kb = (j * p.kvHeads + g) * hv;
    var s = 0.0;
    for (var i = 0u; i < hv; i = i + 1u) { s = s + dot(qv[i], k[kb + i]); }
    if (s > runMax) {
      let corr = exp(runMax - s);
      runSum = runSum * corr;
      for (var i = 0u; i < hv; i = i + 1u) { acc[i] = acc[i] * corr; }
      runMax = s;
    }
    let pj = exp(s - runMax);
    runSum = runSum + pj;
    for (var i = 0u; i < hv; i = i + 1u) { acc[i] = acc[i] + pj * v[kb + i]; }
  }
  for (var i = 0u; i < hv; i = i + 1u) { out[qBase + i] = acc[i] / runSum; }
}
