// Rotary position embedding, in place, "rotate half" layout (as Hugging Face's
// Llama): for head h, pair i < headDim/2 of row m at absolute position
// pos = pastLen + m:
//   a = x[i], b = x[i + halfDim]
//   x[i]        = a·cos(θ) − b·sin(θ)
//   x[i + halfDim] = b·cos(θ) + a·sin(θ),   θ = pos · invFreq[i]
// cos/sin come from a table computed on the CPU (so RoPE variants such as
// Llama-3 scaling only change the table).
//
// Bindings (group 0):
//   0 uniform  params { rows: u32 (M), heads: u32, headDim: u32, pastLen: u32 }
//   1 storage  x     array<f32> [M, heads·headDim] (read_write)
//   2 storage  table array<f32> [positions, halfDim, 2] (cos, sin)
struct Params { rows: u32, heads: u32, headDim: u32, pastLen: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let halfDim = p.headDim / 2u;
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.rows * p.heads * halfDim) { return; }
  let pair = i % halfDim;
  let head = (i / halfDim) % p.heads;
  let m = i / (halfDim * p.heads);
  let base = m * p.heads * p.headDim + head * p.headDim;
  let pos = p.pastLen + m;
  let c = table[(pos * halfDim + pair) * 2u];
  let s = table[(pos * halfDim + pair) * 2u + 1u];
  let a = x[base + pair];
  let b = x[base + pair + halfDim];
  x[base + pair] = a * c - b * s;
  x[base + pair + halfDim] = b * c + a * s;
}
