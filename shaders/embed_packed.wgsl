// Embedding gather from a packed (quantized) table: the same function as
// embed.wgsl with the token table in the packed format of
// src/core/quant/format.ts (row = token id, K = hidden size):
//
//   x[m, d] = (q[ids[m], d] − zero[ids[m], g]) · scale[ids[m], g]  (+ positions[pastLen + m, d]),  g = ⌊d / groupSize⌋
//
// Codes: each row a little-endian bitstream of u32 words, code d at bits
// [d·bits, d·bits + bits) (3-bit codes may straddle two words). Zero points:
// u8, four per u32, low byte first; symmetric tables use 2^(bits−1).
//
// Bindings (group 0):
//   0 uniform  params { rows, dim, pastLen, usePositions, wordsPerRow, groups, bits, groupSize, symmetric }
//   1 storage  ids       array<u32> [M]
//   2 storage  codes     array<u32> [vocab, wordsPerRow]
//   3 storage  scales    array<f32> [vocab, groups]
//   4 storage  zeros     array<u32> [⌈vocab·groups / 4⌉] (a dummy when symmetric)
//   5 storage  positions array<f32> [maxPositions, D] (a dummy when unused)
//   6 storage  x (out)   array<f32> [M, D]
struct Params {
  rows: u32, dim: u32, pastLen: u32, usePositions: u32,
  wordsPerRow: u32, groups: u32, bits: u32, groupSize: u32, symmetric: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> zeros: array<u32>;
@group(0) @binding(5) var<storage, read> positions: array<f32>;
@group(0) @binding(6) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.rows * p.dim) { return; }
  let m = i / p.dim;
  let d = i % p.dim;
  let row = ids[m];
  let bit = d * p.bits;
  let word = row * p.wordsPerRow + bit / 32u;
  let offset = bit % 32u;
  var code = codes[word] >> offset;
  if (offset + p.bits > 32u) { code = code | (codes[word + 1u] << (32u - offset)); }
  code = code & ((1u << p.bits) - 1u);
  let g = row * p.groups + d / p.groupSize;
  var zero = 1u << (p.bits - 1u);
  if (p.symmetric == 0u) { zero = (zeros[g >> 2u] >> ((g & 3u) * 8u)) & 0xFFu; }
  var v = (f32(code) - f32(zero)) * scales[g];
  if (p.usePositions != 0u) { v = v + positions[(p.pastLen + m) * p.dim + d]; }
  x[i] = v;
}
