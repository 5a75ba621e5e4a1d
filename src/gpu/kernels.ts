/**
 * The non-linear kernels of a decoder forward pass (everything but the
 * matrix products): embedding gather, norms, RoPE, attention, element-wise
 * ops, the fused log-softmax + NLL and the KL divergence against a reference
 * model's kept log-probs. Pipelines are compiled once per device;
 * each `encode*` records one dispatch into the caller's compute pass, with its
 * parameters taken from a per-forward uniform arena.
 */
import embedWgsl from '../../shaders/embed.wgsl?raw';
import embedPackedWgsl from '../../shaders/embed_packed.wgsl?raw';
import type { PackedBuffers } from './packed-table';
import normWgsl from '../../shaders/norm.wgsl?raw';
import ropeWgsl from '../../shaders/rope.wgsl?raw';
import attentionWgsl from '../../shaders/attention.wgsl?raw';
import attentionSerialWgsl from '../../shaders/attention_serial.wgsl?raw';
import attentionKvWgsl from '../../shaders/attention_kv.wgsl?raw';
import attentionKvStoreWgsl from '../../shaders/attention_kv_store.wgsl?raw';
import type { KvCacheSpec } from '../core/quant/kv';
import elementwiseWgsl from '../../shaders/elementwise.wgsl?raw';
import nllWgsl from '../../shaders/nll.wgsl?raw';
import klWgsl from '../../shaders/kl.wgsl?raw';
import { cachedPipeline, dispatchGrid } from './linear';
import { tuningFor, type KernelTuning } from './tuning';

/**
 * Uniform parameters for one forward pass, packed in 256-byte slots of one
 * buffer that is written once before the pass is submitted.
 */
export class UniformArena {
  private readonly slot: number;
  private readonly data: ArrayBuffer;
  private used = 0;
  readonly buffer: GPUBuffer;

  constructor(private readonly device: GPUDevice, readonly slots: number) {
    this.slot = Math.max(256, device.limits.minUniformBufferOffsetAlignment);
    this.data = new ArrayBuffer(this.slot * slots);
    this.buffer = device.createBuffer({
      size: this.slot * slots,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'uniform arena',
    });
  }

  reset(): void {
    this.used = 0;
  }

  /** Reserves a slot and fills it: u32 values by default, f32 where `floats` marks the index. */
  push(values: number[], floats: number[] = []): GPUBufferBinding {
    if (this.used >= this.slots) throw new Error(`uniform arena full (${this.slots} slots): raise its size`);
    const offset = this.used * this.slot;
    const u = new Uint32Array(this.data, offset, 16);
    const f = new Float32Array(this.data, offset, 16);
    u.fill(0);
    values.forEach((v, i) => {
      if (floats.includes(i)) f[i] = v;
      else u[i] = v >>> 0;
    });
    this.used++;
    return { buffer: this.buffer, offset, size: 64 };
  }

  /** Writes the used slots to the GPU; call before submitting the commands that read them. */
  flush(): void {
    if (this.used) this.device.queue.writeBuffer(this.buffer, 0, this.data, 0, this.used * this.slot);
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

type Bindings = (GPUBuffer | GPUBufferBinding)[];
type LazyKernel = 'attentionKv' | 'attentionKvSerial' | 'kvStore';

export class DecoderKernels {
  private readonly pipelines: Record<'embed' | 'embedPacked' | 'norm' | 'rope' | 'attention' | 'attentionSerial' | 'elementwise' | 'nll' | 'logSoftmax' | 'kl', GPUComputePipeline>;
  private readonly lazy: Record<LazyKernel, () => GPUComputePipeline>;
  private readonly compiled: Partial<Record<LazyKernel, GPUComputePipeline>> = {};
  private readonly maxDim: number;
  /** A 16-byte buffer bound where a kernel's optional input is unused. */
  readonly dummy: GPUBuffer;

  constructor(readonly device: GPUDevice, readonly tuning: KernelTuning = tuningFor(device)) {
    // compiled once per device, not per executor: a run builds two (the model and its f32
    // reference) and SwiftShader spent ~0.4 s of each building these pipelines again
    const make = (code: string, label: string, constants: Record<string, number> = {}, entryPoint = 'main') =>
      cachedPipeline(device, label, code, entryPoint, constants);
    this.pipelines = {
      embed: make(embedWgsl, 'embed'),
      embedPacked: make(embedPackedWgsl, 'embed (packed)'),
      norm: make(normWgsl, 'norm', { WG: tuning.reductionWidth }),
      rope: make(ropeWgsl, 'rope'),
      attention: make(attentionWgsl, 'attention', { TILE: tuning.attentionTile }),
      attentionSerial: make(attentionSerialWgsl, 'attention (serial)'),
      elementwise: make(elementwiseWgsl, 'elementwise'),
      nll: make(nllWgsl, 'nll', { WG: tuning.reductionWidth }),
      logSoftmax: make(klWgsl, 'log-softmax (reference)', { WG: tuning.reductionWidth }, 'logsoftmax'),
      kl: make(klWgsl, 'kl divergence', { WG: tuning.reductionWidth }),
    };
    // compiled on first use: only executors with a quantized KV cache need them
    this.lazy = {
      attentionKv: () => make(attentionKvWgsl, 'attention (quantized KV)', { TILE: tuning.attentionTile }),
      attentionKvSerial: () => make(attentionKvWgsl, 'attention (quantized KV, serial)', {}, 'serial'),
      kvStore: () => make(attentionKvStoreWgsl, 'KV cache store (quantized)'),
    };
    this.maxDim = device.limits.maxComputeWorkgroupsPerDimension;
    this.dummy = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: 'unused binding' });
  }

  private run(pass: GPUComputePassEncoder, name: keyof DecoderKernels['pipelines'] | LazyKernel, bindings: Bindings, workgroups: number): void {
    const pipeline = name in this.lazy ? (this.compiled[name as LazyKernel] ??= this.lazy[name as LazyKernel]()) : this.pipelines[name as keyof DecoderKernels['pipelines']];
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.map((b, binding) => ({ binding, resource: 'buffer' in b ? b : { buffer: b } })),
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y] = dispatchGrid(Math.max(1, workgroups), this.maxDim);
    pass.dispatchWorkgroups(x, y);
  }

  /** x[M, D] = tokens[ids] (+ positions[pastLen + m]). */
  embed(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; dim: number; pastLen: number; ids: GPUBuffer; tokens: GPUBuffer; positions: GPUBuffer | null; out: GPUBuffer }): void {
    const params = arena.push([a.rows, a.dim, a.pastLen, a.positions ? 1 : 0]);
    this.run(pass, 'embed', [params, a.ids, a.tokens, a.positions ?? this.dummy, a.out], Math.ceil((a.rows * a.dim) / 256));
  }

  /** x[M, D] = dequantized rows ids of a packed token table (+ positions[pastLen + m]). */
  embedPacked(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; pastLen: number; ids: GPUBuffer; table: PackedBuffers; positions: GPUBuffer | null; out: GPUBuffer }): void {
    const t = a.table;
    const params = arena.push([a.rows, t.k, a.pastLen, a.positions ? 1 : 0, t.wordsPerRow, t.groups, t.bits, t.groupSize, t.symmetric ? 1 : 0]);
    this.run(pass, 'embedPacked', [params, a.ids, t.codes, t.scales, t.zeros ?? t.scales, a.positions ?? this.dummy, a.out], Math.ceil((a.rows * t.k) / 256));
  }

  /** y = norm(x) · weight (+ bias); kind 'rmsnorm' or 'layernorm'. */
  norm(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; dim: number; eps: number; kind: 'rmsnorm' | 'layernorm'; x: GPUBuffer; weight: GPUBuffer; bias: GPUBuffer | null; out: GPUBuffer }): void {
    const params = arena.push([a.rows, a.dim, a.eps, a.kind === 'layernorm' ? 1 : 0], [2]);
    this.run(pass, 'norm', [params, a.x, a.weight, a.bias ?? this.dummy, a.out], a.rows);
  }

  /** In-place RoPE on x[M, heads·headDim] at positions pastLen + m. */
  rope(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; heads: number; headDim: number; pastLen: number; x: GPUBuffer; table: GPUBuffer }): void {
    const params = arena.push([a.rows, a.heads, a.headDim, a.pastLen]);
    this.run(pass, 'rope', [params, a.x, a.table], Math.ceil((a.rows * a.heads * (a.headDim / 2)) / 256));
  }

  /** Causal GQA attention of M query rows against keys/values at positions 0 … pastLen + m. */
  attention(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; heads: number; kvHeads: number; headDim: number; pastLen: number; q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; out: GPUBuffer }): void {
    if (a.headDim > 256) throw new Error(`head dimension ${a.headDim} is larger than the attention kernel's 256`);
    const params = arena.push([a.rows, a.heads, a.kvHeads, a.headDim, a.pastLen, 1 / Math.sqrt(a.headDim)], [5]);
    if (this.tuning.cpu && a.headDim % 4 === 0) {
      this.run(pass, 'attentionSerial', [params, a.q, a.k, a.v, a.out], Math.ceil((a.rows * a.heads) / 64));
    } else {
      this.run(pass, 'attention', [params, a.q, a.k, a.v, a.out], a.rows * a.heads);
    }
  }

  /**
   * Quantizes rows [rows, kvDim] of keys or values into a quantized KV cache
   * (src/core/quant/kv.ts) at cache rows rowOffset … rowOffset + rows − 1.
   */
  kvStore(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; kvDim: number; kv: KvCacheSpec; rowOffset: number; x: GPUBuffer; codes: GPUBuffer; scales: GPUBuffer }): void {
    const params = arena.push([a.rows, a.kvDim, a.kv.groupSize, a.kv.bits, a.rowOffset]);
    this.run(pass, 'kvStore', [params, a.x, a.codes, a.scales], Math.ceil((a.rows * (a.kvDim / a.kv.groupSize)) / 64));
  }

  /** attention() with keys and values read from a quantized KV cache (codes and f16 scale/offset pairs). */
  attentionKv(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; heads: number; kvHeads: number; headDim: number; pastLen: number; kv: KvCacheSpec; q: GPUBuffer; kCodes: GPUBuffer; kScales: GPUBuffer; vCodes: GPUBuffer; vScales: GPUBuffer; out: GPUBuffer }): void {
    if (a.headDim > 256) throw new Error(`head dimension ${a.headDim} is larger than the attention kernel's 256`);
    const params = arena.push([a.rows, a.heads, a.kvHeads, a.headDim, a.pastLen, 1 / Math.sqrt(a.headDim), a.kv.groupSize, a.kv.bits], [5]);
    const bindings = [params, a.q, a.kCodes, a.kScales, a.vCodes, a.vScales, a.out];
    if (this.tuning.cpu) this.run(pass, 'attentionKvSerial', bindings, Math.ceil((a.rows * a.heads) / 64));
    else this.run(pass, 'attentionKv', bindings, a.rows * a.heads);
  }

  /** a = a + b (residual). */
  add(pass: GPUComputePassEncoder, arena: UniformArena, count: number, a: GPUBuffer, b: GPUBuffer): void {
    this.elementwise(pass, arena, count, 0, a, b);
  }

  /** gate = silu(gate) · up. */
  swiglu(pass: GPUComputePassEncoder, arena: UniformArena, count: number, gate: GPUBuffer, up: GPUBuffer): void {
    this.elementwise(pass, arena, count, 1, gate, up);
  }

  /** In-place GELU, tanh approximation ("gelu_new") or exact erf form. */
  gelu(pass: GPUComputePassEncoder, arena: UniformArena, count: number, x: GPUBuffer, form: 'tanh' | 'erf'): void {
    this.elementwise(pass, arena, count, form === 'tanh' ? 2 : 3, x, this.dummy);
  }

  /** dst[offset + i] = src[i] for i < count (a new row into the KV cache). */
  copyInto(pass: GPUComputePassEncoder, arena: UniformArena, count: number, dst: GPUBuffer, offset: number, src: GPUBuffer): void {
    this.elementwise(pass, arena, count, 4, dst, src, offset);
  }

  private elementwise(pass: GPUComputePassEncoder, arena: UniformArena, count: number, op: number, a: GPUBuffer, b: GPUBuffer, offset = 0): void {
    const params = arena.push([count, op, offset]);
    this.run(pass, 'elementwise', [params, a, b], Math.ceil(count / 256));
  }

  /** nll[targetOffset + r] and argmax for logits rows r < rows. */
  nll(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; vocab: number; targetOffset: number; logits: GPUBuffer; targets: GPUBuffer; nll: GPUBuffer; argmax: GPUBuffer }): void {
    const params = arena.push([a.rows, a.vocab, a.targetOffset]);
    this.run(pass, 'nll', [params, a.logits, a.targets, a.nll, a.argmax], a.rows);
  }

  /** logp[r, :] = log-softmax of logits rows r < rows, refArgmax[targetOffset + r] = their argmax (a reference model's rows, kept). */
  logSoftmax(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; vocab: number; targetOffset: number; logits: GPUBuffer; logp: GPUBuffer; refArgmax: GPUBuffer }): void {
    const params = arena.push([a.rows, a.vocab, a.targetOffset]);
    this.run(pass, 'logSoftmax', [params, a.logits, a.logp, a.refArgmax], a.rows);
  }

  /**
   * kl[targetOffset + r] = KL(p ‖ q) with p = exp(logp[r, :]) the kept reference
   * and q = softmax(logits[r, :]); agree = argmax q equals refArgmax (both 0 where unscored).
   */
  kl(pass: GPUComputePassEncoder, arena: UniformArena, a: { rows: number; vocab: number; targetOffset: number; logits: GPUBuffer; logp: GPUBuffer; refArgmax: GPUBuffer; targets: GPUBuffer; kl: GPUBuffer; agree: GPUBuffer }): void {
    const params = arena.push([a.rows, a.vocab, a.targetOffset]);
    this.run(pass, 'kl', [params, a.logits, a.logp, a.refArgmax, a.targets, a.kl, a.agree], a.rows);
  }

  destroy(): void {
    this.dummy.destroy();
  }
}
