import { beforeAll, describe, expect, it } from 'vitest';
import { dawnDevice } from '../helpers/dawn';
import { maxRelError, randomF32, rng } from '../helpers/random';
import { DecoderKernels, UniformArena } from '../../src/gpu/kernels';
import { CPU_TUNING, GPU_TUNING } from '../../src/gpu/tuning';
import { readF32, readBuffer } from '../../src/gpu/readback';
import { MemoryLedger } from '../../src/gpu/ledger';
import { uploadPacked } from '../../src/gpu/packed-table';
import { dequantize, quantizeRtn } from '../../src/core/quant/rtn';
import { attentionRef, geluTanhRef, klRef, nllRef, normRef, ropeRef, siluRef } from '../../src/core/reference';
import { ropeTable } from '../../src/core/rope';

// Tolerance: f32 kernels against float64 references, max error relative to the
// largest reference magnitude.
const TOL = 2e-6;

let device: GPUDevice;
let kernels: DecoderKernels;
let arena: UniformArena;

function upload(data: Float32Array | Int32Array | Uint32Array): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data);
  return b;
}
const empty = (n: number) => upload(new Float32Array(n).fill(Number.NaN));

function submit(record: (pass: GPUComputePassEncoder) => void): void {
  arena.reset();
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  record(pass);
  pass.end();
  arena.flush();
  device.queue.submit([enc.finish()]);
}

// Both kernel shapes run here: the GPU one (wide workgroups, tree reductions)
// and the CPU-adapter one (narrow workgroups, serial attention).
for (const [tuningName, tuning] of [['GPU-shaped', GPU_TUNING], ['CPU-shaped', CPU_TUNING]] as const) describe(`decoder kernels (${tuningName}) match their CPU references`, () => {
beforeAll(async () => {
  ({ device } = await dawnDevice());
  kernels = new DecoderKernels(device, tuning);
  arena = new UniformArena(device, 64);
});

  it('embedding gather with learned positions', async () => {
    const vocab = 37, dim = 45, rows = 19, pastLen = 3;
    const tokens = randomF32(vocab * dim, 1), positions = randomF32(40 * dim, 2);
    const r = rng(3);
    const ids = Uint32Array.from({ length: rows }, () => Math.floor(r() * vocab));
    const out = empty(rows * dim);
    submit((p) => kernels.embed(p, arena, { rows, dim, pastLen, ids: upload(ids), tokens: upload(tokens), positions: upload(positions), out }));
    const got = await readF32(device, out, rows * dim);
    const want = new Float64Array(rows * dim);
    for (let m = 0; m < rows; m++) for (let d = 0; d < dim; d++) want[m * dim + d] = tokens[ids[m] * dim + d] + positions[(pastLen + m) * dim + d];
    expect(maxRelError(got, want)).toBeLessThan(TOL);
  });

  for (const [bits, groupSize, symmetric] of [[2, 32, false], [3, 64, false], [4, 'row', true], [8, 32, false]] as const) {
    it(`embedding gather from a packed table: ${bits} bits, group ${groupSize}${symmetric ? ', symmetric' : ''}`, async () => {
      const vocab = 41, dim = 192, rows = 13, pastLen = 2;
      const tokens = randomF32(vocab * dim, 21), positions = randomF32(20 * dim, 22);
      const packed = quantizeRtn(tokens, vocab, dim, { bits, groupSize, symmetric });
      const table = uploadPacked(new MemoryLedger(device), packed, 'table');
      const r = rng(23);
      const ids = Uint32Array.from({ length: rows }, () => Math.floor(r() * vocab));
      const out = empty(rows * dim);
      submit((p) => kernels.embedPacked(p, arena, { rows, pastLen, ids: upload(ids), table, positions: upload(positions), out }));
      const got = await readF32(device, out, rows * dim);
      const deq = dequantize(packed);
      const want = new Float64Array(rows * dim);
      for (let m = 0; m < rows; m++) for (let d = 0; d < dim; d++) want[m * dim + d] = deq[ids[m] * dim + d] + positions[(pastLen + m) * dim + d];
      expect(maxRelError(got, want)).toBeLessThan(TOL);
    });
  }

  for (const kind of ['rmsnorm', 'layernorm'] as const) {
    it(`${kind} over odd row lengths`, async () => {
      for (const [rows, dim] of [[7, 45], [3, 600]]) {
        const x = randomF32(rows * dim, 4, 3), w = randomF32(dim, 5), b = randomF32(dim, 6);
        const out = empty(rows * dim);
        submit((p) => kernels.norm(p, arena, { rows, dim, eps: 1e-5, kind, x: upload(x), weight: upload(w), bias: kind === 'layernorm' ? upload(b) : null, out }));
        const got = await readF32(device, out, rows * dim);
        expect(maxRelError(got, normRef(x, rows, dim, w, b, 1e-5, kind))).toBeLessThan(TOL * 5);
      }
    });
  }

  it('rotary embedding at an offset', async () => {
    const rows = 11, heads = 3, headDim = 32, pastLen = 5;
    const x = randomF32(rows * heads * headDim, 7);
    const table = ropeTable(pastLen + rows, headDim, 10000);
    const buf = upload(x);
    submit((p) => kernels.rope(p, arena, { rows, heads, headDim, pastLen, x: buf, table: upload(table) }));
    const got = await readF32(device, buf, x.length);
    expect(maxRelError(got, ropeRef(x, rows, heads, headDim, pastLen, table))).toBeLessThan(TOL);
  });

  for (const [rows, heads, kvHeads, headDim, pastLen] of [[70, 4, 2, 32, 0], [1, 6, 3, 48, 77], [5, 2, 1, 100, 130]]) {
    it(`causal GQA attention M=${rows} H=${heads}/${kvHeads} hd=${headDim} past=${pastLen}`, async () => {
      const total = pastLen + rows;
      const q = randomF32(rows * heads * headDim, 8, 2), k = randomF32(total * kvHeads * headDim, 9, 2), v = randomF32(total * kvHeads * headDim, 10);
      const out = empty(rows * heads * headDim);
      submit((p) => kernels.attention(p, arena, { rows, heads, kvHeads, headDim, pastLen, q: upload(q), k: upload(k), v: upload(v), out }));
      const got = await readF32(device, out, rows * heads * headDim);
      expect(maxRelError(got, attentionRef(q, k, v, rows, heads, kvHeads, headDim, pastLen))).toBeLessThan(TOL * 5);
    });
  }

  it('residual add, SwiGLU, GELU and the KV-cache row copy', async () => {
    const n = 1001;
    const a = randomF32(n, 11, 6), b = randomF32(n, 12, 3);
    const bufAdd = upload(a), bufSw = upload(a), bufGelu = upload(a), bufB = upload(b), bufCopy = upload(a);
    submit((p) => {
      kernels.copyInto(p, arena, 100, bufCopy, 37, bufB);
      kernels.add(p, arena, n, bufAdd, bufB);
      kernels.swiglu(p, arena, n, bufSw, bufB);
      kernels.gelu(p, arena, n, bufGelu, 'tanh');
    });
    expect(maxRelError(await readF32(device, bufAdd, n), Array.from(a, (z, i) => z + b[i]))).toBeLessThan(TOL);
    expect(maxRelError(await readF32(device, bufSw, n), Array.from(a, (z, i) => siluRef(z) * b[i]))).toBeLessThan(TOL);
    expect(maxRelError(await readF32(device, bufGelu, n), Array.from(a, geluTanhRef))).toBeLessThan(TOL);
    expect(Array.from(await readF32(device, bufCopy, n))).toEqual(Array.from(a, (z, i) => (i >= 37 && i < 137 ? b[i - 37] : z)));
  });

  it('fused log-softmax + NLL and argmax, skipping unscored rows', async () => {
    const rows = 9, vocab = 1237;
    const logits = randomF32(rows * vocab, 13, 8);
    const r = rng(14);
    const targets = Int32Array.from({ length: rows }, (_, i) => (i === 4 ? -1 : Math.floor(r() * vocab)));
    const nll = empty(rows), argmax = upload(new Uint32Array(rows));
    submit((p) => kernels.nll(p, arena, { rows, vocab, targetOffset: 0, logits: upload(logits), targets: upload(targets), nll, argmax }));
    const want = nllRef(logits, rows, vocab, targets);
    const got = await readF32(device, nll, rows);
    for (let i = 0; i < rows; i++) expect(Math.abs(got[i] - want.nll[i])).toBeLessThan(1e-5 * Math.max(1, want.nll[i]));
    expect(Array.from(new Uint32Array(await readBuffer(device, argmax, rows * 4)))).toEqual(Array.from(want.argmax));
  });

  it('kept reference log-softmax, then KL divergence and top-1 agreement against it, at an offset, skipping unscored rows', async () => {
    const rows = 11, vocab = 1237, offset = 3;
    const reference = randomF32(rows * vocab, 15, 8);
    const noise = randomF32(rows * vocab, 16, 1);
    // row 2 is the reference itself (KL exactly 0); the others drift by more and more
    const logits = Float32Array.from(reference, (z, i) => z + noise[i] * (Math.floor(i / vocab) === 2 ? 0 : Math.floor(i / vocab) * 0.3));
    const r = rng(17);
    const targets = Int32Array.from({ length: offset + rows }, (_, i) => (i === offset + 5 ? -1 : Math.floor(r() * vocab)));
    const logp = empty(rows * vocab), refArgmax = upload(new Uint32Array(offset + rows));
    const kl = empty(offset + rows), agree = upload(new Uint32Array(offset + rows).fill(7));
    submit((p) => {
      kernels.logSoftmax(p, arena, { rows, vocab, targetOffset: offset, logits: upload(reference), logp, refArgmax });
      kernels.kl(p, arena, { rows, vocab, targetOffset: offset, logits: upload(logits), logp, refArgmax, targets: upload(targets), kl, agree });
    });
    const gotLogp = await readF32(device, logp, rows * vocab);
    const all = new Int32Array(rows);
    const refNll = nllRef(reference, rows, vocab, all);
    const wantLogp = Array.from(reference, (z, i) => {
      const row = Math.floor(i / vocab);
      return -nllRef(reference.subarray(row * vocab, (row + 1) * vocab), 1, vocab, [i - row * vocab]).nll[0];
    });
    expect(maxRelError(gotLogp, wantLogp)).toBeLessThan(TOL);
    expect(Array.from(new Uint32Array(await readBuffer(device, refArgmax, (offset + rows) * 4))).slice(offset)).toEqual(Array.from(refNll.argmax));
    const want = klRef(reference, logits, rows, vocab, targets.subarray(offset));
    const got = (await readF32(device, kl, offset + rows)).subarray(offset);
    for (let i = 0; i < rows; i++) expect(Math.abs(got[i] - want.kl[i])).toBeLessThan(2e-6 + 1e-5 * want.kl[i]);
    expect(got[2]).toBe(0);
    expect(got[5]).toBe(0);
    expect(want.kl[10]).toBeGreaterThan(0.1);
    const gotAgree = Array.from(new Uint32Array(await readBuffer(device, agree, (offset + rows) * 4))).slice(offset);
    expect(gotAgree).toEqual(Array.from(want.agree));
    expect(gotAgree).toContain(0);
    expect(gotAgree).toContain(1);
  });
});
