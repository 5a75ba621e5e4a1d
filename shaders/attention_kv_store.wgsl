// Quantized KV cache, write side: rows of keys or values [rows, kvDim] (f32,
// RoPE already applied to keys) become cache rows rowOffset … rowOffset+rows−1
// in the format of src/core/quant/kv.ts (its quantizeKvRows is the reference):
//
//   per group of GROUP consecutive values:  lo = f16(min), scale = f16((max − lo)/(2^bits − 1)) (1 if 0)
//   q = clamp(round((x − lo)/scale), 0, 2^bits − 1),  x̂ = q·scale + lo
//   params[row, g] = pack2x16float(scale, lo);  codes packed along the row, low bits first
//
// One invocation per (row, group), 64 per workgroup, 2-D dispatch
// (index = gid.x + gid.y · nwg.x · 64). No workgroup memory, no barriers.
//
// Bindings (group 0):
//   0 uniform  params { rows, kvDim, groupSize, bits (8 or 4), rowOffset }
//   1 storage  x      array<f32> [rows, kvDim]
//   2 storage  codes  array<u32> [positions, kvDim·bits/32]   (read_write)
//   3 storage  scales array<u32> [positions, kvDim/groupSize] (read_write)
struct Params { rows: u32, kvDim: u32, groupSize: u32, bits: u32, rowOffset: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let item = gid.x + gid.y * nwg.x * 64u;
  let groups = p.kvDim / p.groupSize;
  if (item >= p.rows * groups) { return; }
  let r = item / groups;
  let g = item % groups;
  let src = r * p.kvDim + g * p.groupSize;
  var lo = x[src];
  var hi = lo;
  for (var j = 1u; j < p.groupSize; j++) {
    lo = min(lo, x[src + j]);
    hi = max(hi, x[src + j]);
  }
  let maxq = (1u << p.bits) - 1u;
  // Round both to f16 first, then quantize with the values the reader will see.
  let lo16 = unpack2x16float(pack2x16float(vec2<f32>(lo, 0.0))).x;
  var scale = unpack2x16float(pack2x16float(vec2<f32>((hi - lo16) / f32(maxq), 0.0))).x;
  if (!(scale > 0.0)) { scale = 1.0; }
  let row = p.rowOffset + r;
  scales[row * groups + g] = pack2x16float(vec2<f32>(scale, lo16));
  let perWord = 32u / p.bits;
  let wordsPerRow = p.kvDim * p.bits / 32u;
  let w0 = row * wordsPerRow + g * p.groupSize / perWord;
  for (var w = 0u; w < p.groupSize / perWord; w++) {
    var word = 0u;
    for (var i = 0u; i < perWord; i++) {
      let v = x[src + w * perWord + i];
      let q = u32(clamp(round((v - lo16) / scale), 0.0, f32(maxq)));
      word = word | (q << (i * p.bits));
    }
    codes[w0 + w] = word;
  }
}
