// gptq_bench — pseudo-random calibration inputs for bench/gptq.ts, made on
// the GPU so that a 1B-shaped run does not upload gigabytes of random rows.
//
//   x[i] = uniform in [-1, 1) from a hash of (seed, i)   (PCG-style mix)
//
// Bindings (group 0): 0 x: array<f32> (read_write, count floats)
//                     1 params: uniform { count, seed }
// Entry point `fillRandom`: one value per invocation, 256 per workgroup, 2D
// dispatch numbered wid.x + wid.y · num_workgroups.x.

struct Params {
  count: u32,
  seed: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;

fn mix(v: u32) -> u32 {
  var s = v * 747796405u + 2891336453u;
  s = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (s >> 22u) ^ s;
}

@compute @workgroup_size(256)
fn fillRandom(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= params.count) { return; }
  let h = mix(i ^ mix(params.seed));
  x[i] = f32(h >> 8u) / 8388608.0 - 1.0;
}
