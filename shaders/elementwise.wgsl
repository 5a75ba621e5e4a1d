// Element-wise kernels of the decoder block, one invocation per element of a
// flat array of `count` values (2-D dispatch: index = x + y·nwg.x·256).
//
//   add      (op 0): a[i] = a[i] + b[i]                               residual connection
//   swiglu   (op 1): a[i] = silu(a[i]) · b[i],  silu(z) = z / (1 + e^(−z))   a = gate, b = up
//   gelu_tanh(op 2): a[i] = ½·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))   GPT-2's "gelu_new"
//   gelu_erf (op 3): a[i] = ½·z·(1 + erf(z/√2))  (erf by Abramowitz–Stegun 7.1.26, |error| < 1.5e-7)
//   copy     (op 4): a[offset + i] = b[i]                            appending a row to the KV cache
//
// Bindings (group 0):
//   0 uniform  params { count: u32, op: u32, offset: u32 }
//   1 storage  a array<f32> (read_write)
//   2 storage  b array<f32> (read; a dummy for gelu)
struct Params { count: u32, op: u32, offset: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

fn tanhSafe(z: f32) -> f32 {
  // tanh saturates to ±1 in f32 beyond |z| ≈ 9; clamping avoids exp overflow in some drivers.
  return tanh(clamp(z, -15.0, 15.0));
}

fn erfApprox(z: f32) -> f32 {
  let s = sign(z);
  let x = abs(z);
  let t = 1.0 / (1.0 + 0.3275911 * x);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-x * x);
  return s * y;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.count) { return; }
  if (p.op == 4u) {
    a[p.offset + i] = b[i];
    return;
  }
  let z = a[i];
  switch (p.op) {
    case 0u: { a[i] = z + b[i]; }
    case 1u: { a[i] = z / (1.0 + exp(-z)) * b[i]; }
    case 2u: { a[i] = 0.5 * z * (1.0 + tanhSafe(0.7978845608028654 * (z + 0.044715 * z * z * z))); }
    default: { a[i] = 0.5 * z * (1.0 + erfApprox(z * 0.7071067811865476)); }
  }
}
