/**
 * The decoder executor: one DecoderConfig, its weights on the GPU (f32 or
 * packed, through a LinearFactory), and a forward pass recorded into a few
 * compute passes. It scores windows (per-position NLL and argmax, computed on
 * the GPU: logits never leave it) and runs single-token decode steps against
 * a KV cache. Against a reference model (the unquantized one) on the same
 * window, it also scores the per-position KL divergence and top-1 agreement:
 * the reference's forward keeps its log-probs on the GPU (ReferenceLogProbs),
 * the compared forward reads them in its KL kernel.
 *
 * Buffers (rows ≤ maxRows, D = hidden, Q = heads·headDim, KV = kvHeads·headDim, I = intermediate):
 *   x [rows, D] residual stream        xn [rows, D] normalized
 *   q [rows, Q]   att [rows, Q]        kCache/vCache per layer [maxRows, KV]
 *   h1, h2 [rows, I] MLP               tmp [rows, D] block outputs
 *   logits [chunk, vocab]              nll, argmax, kl, agree [rows]
 */
import type { DecoderConfig } from '../core/decoder';
import { blockLinears, linearShape } from '../core/decoder';
import { ropeTableFor } from '../core/rope';
import { DecoderKernels, UniformArena } from './kernels';
import type { MemoryLedger } from './ledger';
import type { PackedLinear } from '../core/quant/format';
import { releasePacked, uploadPacked, type PackedBuffers } from './packed-table';
import { checkKvSpec, kvBytesPerPosition, kvWordsPerRow, type KvCacheSpec } from '../core/quant/kv';

/** A linear layer y[m, n] = x[m, k] · Wᵀ (+ bias) on the GPU, f32 or packed. */
export interface LinearLayer {
  readonly n: number;
  readonly k: number;
  /** bytes this layer holds on the GPU (weights, scales, zero points, bias) */
  readonly bytes: number;
  /** a short description of the kernel variant, for results ("f32", "q4 g128 asym") */
  readonly variant: string;
  encode(pass: GPUComputePassEncoder, x: GPUBuffer, y: GPUBuffer, m: number): void;
  destroy(): void;
}

/**
 * Builds the GPU form of one linear layer from its f32 weight W[n, k].
 * `name` is canonical ("layers.3.attn.q", "head"); the factory decides the format.
 * `shared`, when given, is that same weight already on the GPU in f32 (a tied
 * head: the embedding table): an f32 layer should multiply with it instead of
 * uploading a second copy.
 */
export type LinearFactory = (name: string, weight: Float32Array, n: number, k: number, bias: Float32Array | null, shared?: GPUBuffer) => LinearLayer;

/** Reads one canonical tensor as f32; resolves null when an optional tensor is absent. */
export type TensorReader = (name: string) => Promise<Float32Array | null>;

export interface ExecutorOptions {
  /** longest window or context the executor will run (sizes activations and the KV cache) */
  maxRows: number;
  linear: LinearFactory;
  /** rows of logits computed at once; defaults to what fits in 64 MiB */
  headChunkRows?: number;
  /**
   * The packed form of the token embedding table [vocab, hidden], or null to
   * keep it in f32. For a tied model the head then multiplies with the same
   * packed table (`tiedHead` builds that layer from it).
   */
  quantizeEmbedding?: (weight: Float32Array, vocab: number, hidden: number) => PackedLinear | null;
  /** the head of a tied model whose embedding table is packed, sharing its buffers */
  tiedHead?: (table: PackedBuffers) => LinearLayer;
  /** report progress while weights upload (tensor i of n) */
  onLoad?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /**
   * Quantize the KV cache (src/core/quant/kv.ts): keys and values are stored
   * as int8/int4 group-wise codes and attention reads them; null/absent = f32.
   */
  kvCache?: KvCacheSpec | null;
}

interface Norm { weight: GPUBuffer; bias: GPUBuffer | null }
interface Block {
  attnNorm: Norm;
  mlpNorm: Norm;
  linears: Record<string, LinearLayer>;
  /** f32 [maxRows, KV], or the codes of a quantized cache (then kScales/vScales hold its scale/offset pairs) */
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  kScales: GPUBuffer | null;
  vScales: GPUBuffer | null;
}

const isPacked = (t: GPUBuffer | PackedBuffers): t is PackedBuffers => 'codes' in t;

/** Where a block's linear layers read their input: q/k/v, o, gate/up, down. */
export type LinearSite = 'attn-in' | 'o-in' | 'mlp-in' | 'down-in';
/** Sees one sample's input [rows, K] of a group of linears during DecoderExecutor.runBlock. */
export type BlockHook = (site: LinearSite, input: GPUBuffer, rows: number, encoder: GPUCommandEncoder) => void;

/** kl and agree are there when the forward compared against reference log-probs (ForwardOptions.compareWith). */
export interface WindowScore extends Partial<CompareScore> {
  /** per input position; 0 where not scored */
  nll: Float32Array;
  /** per input position, the most likely next token */
  argmax: Uint32Array;
  /** GPU time of the forward pass from timestamp queries; null where the adapter has none */
  gpuSeconds: number | null;
}

export interface CompareScore {
  /** per input position KL(P_reference ‖ P_this) in nats; 0 where not scored */
  kl: Float32Array;
  /** per input position 1 where this model's top token is the reference's, else 0 (0 where not scored) */
  agree: Uint32Array;
}

export interface ForwardOptions {
  /** copies out the residual stream after the embeddings and each block, and the final norm's output */
  capture?: (name: string, rows: Float32Array) => void;
  /** keep this forward's log-probs and argmax in `store` (the reference run of a window) */
  keepLogProbs?: ReferenceLogProbs;
  /** score KL divergence and top-1 agreement against the log-probs `store` kept for the same window */
  compareWith?: ReferenceLogProbs;
}

/**
 * A reference model's log-probs [rows, vocab] for one window, kept on the GPU
 * between its forward and the compared model's forward. Split in buffers of
 * the executor's head chunk (each within the storage binding limit).
 */
export class ReferenceLogProbs {
  /** the window the buffers hold (its input ids), null before the first kept forward */
  ids: Int32Array | null = null;
  readonly chunks: GPUBuffer[] = [];
  readonly argmax: GPUBuffer;

  constructor(private readonly ledger: MemoryLedger, readonly maxRows: number, readonly chunkRows: number, readonly vocab: number) {
    const usage = GPUBufferUsage.STORAGE;
    for (let start = 0; start < maxRows; start += chunkRows) {
      const n = Math.min(chunkRows, maxRows - start);
      this.chunks.push(ledger.createBuffer('activations', n * vocab * 4, usage, `reference log-probs ${start}…${start + n - 1}`));
    }
    this.argmax = ledger.createBuffer('activations', maxRows * 4, usage, 'reference argmax');
  }

  get bytes(): number {
    return this.maxRows * (this.vocab + 1) * 4;
  }

  destroy(): void {
    for (const b of this.chunks) this.ledger.release(b);
    this.ledger.release(this.argmax);
    this.chunks.length = 0;
    this.ids = null;
  }
}

export class DecoderExecutor {
  private readonly kernels: DecoderKernels;
  private readonly arena: UniformArena;
  private readonly buffers: Record<string, GPUBuffer> = {};
  private readonly headChunk: number;
  private destroyed = false;

  private constructor(
    readonly device: GPUDevice,
    readonly ledger: MemoryLedger,
    readonly config: DecoderConfig,
    readonly maxRows: number,
    private readonly embedTokens: GPUBuffer | PackedBuffers,
    private readonly embedPositions: GPUBuffer | null,
    private readonly blocks: Block[],
    private readonly finalNorm: Norm,
    readonly head: LinearLayer,
    private readonly rope: GPUBuffer | null,
    headChunkRows: number | undefined,
    /** the quantized KV cache's format; null = f32 */
    readonly kvCache: KvCacheSpec | null = null,
  ) {
    this.kernels = new DecoderKernels(device);
    const c = config;
    const f = (n: number) => n * 4;
    const act = (name: string, bytes: number) => {
      this.buffers[name] = ledger.createBuffer('activations', bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, name);
    };
    const rows = maxRows;
    act('x', f(rows * c.hiddenSize));
    act('xn', f(rows * c.hiddenSize));
    act('tmp', f(rows * c.hiddenSize));
    act('q', f(rows * c.numHeads * c.headDim));
    act('att', f(rows * c.numHeads * c.headDim));
    act('kNew', f(c.numKvHeads * c.headDim));
    act('vNew', f(c.numKvHeads * c.headDim));
    // a quantized cache: new keys/values in f32 before the store kernel quantizes them into the cache
    if (kvCache) {
      act('kRows', f(rows * c.numKvHeads * c.headDim));
      act('vRows', f(rows * c.numKvHeads * c.headDim));
    }
    act('h1', f(rows * c.intermediateSize));
    act('h2', f(rows * c.intermediateSize));
    act('ids', f(rows));
    act('targets', f(rows));
    act('nll', f(rows));
    act('argmax', f(rows));
    act('kl', f(rows));
    act('agree', f(rows));
    const byMemory = Math.max(1, Math.floor((64 * 2 ** 20) / f(c.vocabSize)));
    const byBinding = Math.max(1, Math.floor(device.limits.maxStorageBufferBindingSize / f(c.vocabSize)));
    this.headChunk = Math.min(rows, headChunkRows ?? byMemory, byBinding);
    // per head chunk: nll, and log-softmax or KL against a reference
    this.arena = new UniformArena(device, 32 + blocks.length * 24 + 2 * Math.ceil(rows / this.headChunk));
    act('logits', f(this.headChunk * c.vocabSize));
    if (this.headChunk < rows) act('headIn', f(this.headChunk * c.hiddenSize));
    // nll [maxRows] | argmax [maxRows] | kl [maxRows] | agree [maxRows] | two u64 timestamps
    this.buffers.staging = ledger.createBuffer('scratch', f(rows) * 4 + 16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'nll readback');
    if (device.features.has('timestamp-query')) {
      this.timestamps = device.createQuerySet({ type: 'timestamp', count: 2, label: 'forward timestamps' });
      this.buffers.timestamps = ledger.createBuffer('scratch', 16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, 'timestamps');
    }
  }

  private readonly timestamps: GPUQuerySet | null = null;

  /** Uploads the model tensor by tensor (each f32 copy lives only while its layer is built). */
  static async load(device: GPUDevice, ledger: MemoryLedger, config: DecoderConfig, read: TensorReader, options: ExecutorOptions): Promise<DecoderExecutor> {
    const c = config;
    const total = 4 + c.numLayers * (4 + blockLinears(c).length);
    let done = 0;
    const tick = () => {
      options.signal?.throwIfAborted();
      options.onLoad?.(++done, total);
    };
    const required = async (name: string, expected: number): Promise<Float32Array> => {
      const t = await read(name);
      if (!t) throw new Error(`the model has no tensor "${name}", which a ${c.family} model needs: the weights file does not match config.json`);
      if (t.length !== expected) throw new Error(`tensor "${name}" has ${t.length} values where config.json implies ${expected}: the weights file does not match config.json`);
      return t;
    };
    const uploadVector = async (name: string, n: number, optional: boolean): Promise<GPUBuffer | null> => {
      const t = optional ? await read(name) : await required(name, n);
      if (!t) return null;
      return ledger.upload('weights', t, name);
    };
    const norm = async (prefix: string): Promise<Norm> => {
      const weight = (await uploadVector(`${prefix}.weight`, c.hiddenSize, false))!;
      const bias = c.norm === 'layernorm' ? await uploadVector(`${prefix}.bias`, c.hiddenSize, false) : null;
      return { weight, bias };
    };
    const built: { release(): void }[] = [];
    try {
      const tokensF32 = await required('embed.tokens', c.vocabSize * c.hiddenSize);
      const packedTokens = options.quantizeEmbedding?.(tokensF32, c.vocabSize, c.hiddenSize) ?? null;
      let embedTokens: GPUBuffer | PackedBuffers;
      if (packedTokens) {
        if (c.tiedEmbeddings && !options.tiedHead) throw new Error('a tied model with a packed embedding table needs the head to share it (tiedHead)');
        const table = uploadPacked(ledger, packedTokens, 'embed.tokens');
        embedTokens = table;
        built.push({ release: () => releasePacked(ledger, table) });
      } else {
        const buffer = ledger.upload('weights', tokensF32, 'embed.tokens');
        embedTokens = buffer;
        built.push({ release: () => ledger.release(buffer) });
      }
      tick();
      let embedPositions: GPUBuffer | null = null;
      if (c.positions === 'learned') {
        embedPositions = ledger.upload('weights', await required('embed.positions', c.maxPositions * c.hiddenSize), 'embed.positions');
        built.push({ release: () => ledger.release(embedPositions) });
      }
      tick();
      const blocks: Block[] = [];
      for (let i = 0; i < c.numLayers; i++) {
        const attnNorm = await norm(`layers.${i}.attn_norm`);
        tick();
        const mlpNorm = await norm(`layers.${i}.mlp_norm`);
        tick();
        const linears: Record<string, LinearLayer> = {};
        for (const l of blockLinears(c)) {
          const [n, k] = linearShape(c, l);
          const name = `layers.${i}.${l}`;
          const w = await required(`${name}.weight`, n * k);
          const hasBias = l === 'attn.o' ? c.attnOutBias : l.startsWith('attn.') ? c.attnBias : c.mlpBias;
          const bias = hasBias ? await required(`${name}.bias`, n) : null;
          linears[l] = options.linear(name, w, n, k, bias);
          built.push(linears[l] ? { release: () => linears[l].destroy() } : { release: () => {} });
          tick();
        }
        const kvDim = c.numKvHeads * c.headDim;
        const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
        const kv = options.kvCache ?? null;
        if (kv) checkKvSpec(kv, c.headDim);
        const kvBytes = kv ? options.maxRows * kvWordsPerRow(kvDim, kv.bits) * 4 : options.maxRows * kvDim * 4;
        const kCache = ledger.createBuffer('kv', kvBytes, usage, `layers.${i}.k_cache${kv ? ' codes' : ''}`);
        const vCache = ledger.createBuffer('kv', kvBytes, usage, `layers.${i}.v_cache${kv ? ' codes' : ''}`);
        const scaleBytes = kv ? options.maxRows * (kvDim / kv.groupSize) * 4 : 0;
        const kScales = kv ? ledger.createBuffer('kv', scaleBytes, usage, `layers.${i}.k_cache scales`) : null;
        const vScales = kv ? ledger.createBuffer('kv', scaleBytes, usage, `layers.${i}.v_cache scales`) : null;
        const block: Block = { attnNorm, mlpNorm, linears, kCache, vCache, kScales, vScales };
        built.push({ release: () => [kCache, vCache, kScales, vScales].forEach((b) => ledger.release(b)) });
        blocks.push(block);
        tick();
      }
      const finalNorm = await norm('final_norm');
      tick();
      let head: LinearLayer;
      if (c.tiedEmbeddings && isPacked(embedTokens)) {
        head = options.tiedHead!(embedTokens);
      } else {
        const headWeight = c.tiedEmbeddings ? tokensF32 : await required('head.weight', c.vocabSize * c.hiddenSize);
        // a tied f32 head may multiply with the embedding table itself (one copy of vocab × hidden floats, not two)
        head = options.linear('head', headWeight, c.vocabSize, c.hiddenSize, null, c.tiedEmbeddings ? (embedTokens as GPUBuffer) : undefined);
      }
      tick();
      const rope = c.positions === 'rope' ? ledger.upload('weights', ropeTableFor(c, options.maxRows), 'rope table') : null;
      return new DecoderExecutor(device, ledger, c, options.maxRows, embedTokens, embedPositions, blocks, finalNorm, head, rope, options.headChunkRows, options.kvCache ?? null);
    } catch (error) {
      for (const b of built) b.release();
      throw error;
    }
  }

  /** Bytes of all weights on the GPU (packed where quantized). */
  weightBytes(): number {
    return this.ledger.snapshot().current.weights;
  }

  /** Bytes one position of context takes in the KV cache, all layers, K and V (in the cache's format, f32 or quantized). */
  kvBytesPerToken(): number {
    const c = this.config;
    return c.numLayers * kvBytesPerPosition(c.numKvHeads * c.headDim, this.kvCache);
  }

  /** Kernel variants in use, for the result record. */
  variants(): string[] {
    const set = new Set<string>();
    for (const b of this.blocks) for (const l of Object.values(b.linears)) set.add(l.variant);
    set.add(`head ${this.head.variant}`);
    return [...set];
  }

  /** GPU buffers to keep this model's log-probs for windows of up to maxRows tokens (the reference side of a KL comparison). */
  createReferenceLogProbs(): ReferenceLogProbs {
    return new ReferenceLogProbs(this.ledger, this.maxRows, this.headChunk, this.config.vocabSize);
  }

  /**
   * Runs `ids` (rows ≤ maxRows) at positions pastLen … pastLen + rows − 1 and
   * scores each position's prediction of targets[m] (−1 = not scored).
   * With `capture` (a function, or options.capture), the residual stream after
   * the embeddings and after each block, and the final norm's output, are
   * copied out (tests and debugging). options.keepLogProbs / compareWith: see ForwardOptions.
   */
  async forward(ids: Int32Array, targets: Int32Array, pastLen = 0, options?: ForwardOptions | ((name: string, rows: Float32Array) => void)): Promise<WindowScore> {
    const opts: ForwardOptions = typeof options === 'function' ? { capture: options } : (options ?? {});
    const { capture, keepLogProbs: keep, compareWith: against } = opts;
    if (this.destroyed) throw new Error('this model was unloaded; load it again');
    const rows = ids.length;
    const c = this.config;
    if (rows < 1 || rows + pastLen > this.maxRows) throw new Error(`a window of ${rows} tokens at position ${pastLen} does not fit the executor's ${this.maxRows} positions`);
    if (targets.length !== rows) throw new Error(`${targets.length} targets for ${rows} input tokens: give one target (or −1) per position`);
    for (const id of ids) if (id < 0 || id >= c.vocabSize) throw new Error(`token id ${id} is outside the vocabulary of ${c.vocabSize}`);
    for (const store of [keep, against]) {
      if (!store) continue;
      if (pastLen !== 0) throw new Error('reference log-probs compare whole windows: run them at position 0, not in decode steps');
      if (store.chunks.length === 0) throw new Error('these reference log-probs were freed: create new ones');
      if (store.vocab !== c.vocabSize || store.chunkRows !== this.headChunk || store.maxRows < rows) {
        throw new Error(`reference log-probs for ${store.maxRows} rows × ${store.vocab} tokens in chunks of ${store.chunkRows} do not fit this model's ${rows} rows × ${c.vocabSize} tokens in chunks of ${this.headChunk}: load both models with the same maxRows and headChunkRows`);
      }
    }
    if (against) {
      const kept = against.ids;
      if (!kept || kept.length !== rows || kept.some((id, i) => id !== ids[i])) {
        throw new Error('the reference log-probs hold another window: run the reference model on this window (keepLogProbs) before comparing');
      }
    }
    const { device, kernels, arena } = this;
    const B = this.buffers;
    device.queue.writeBuffer(B.ids, 0, Uint32Array.from(ids));
    device.queue.writeBuffer(B.targets, 0, targets);
    arena.reset();
    const encoder = device.createCommandEncoder({ label: 'forward' });
    const captures: { name: string; buffer: GPUBuffer; bytes: number }[] = [];
    // The first pass writes the start timestamp; an empty pass at the end writes the end.
    let pass = encoder.beginComputePass(this.timestamps ? { timestampWrites: { querySet: this.timestamps, beginningOfPassWriteIndex: 0 } } : undefined);
    const snapshot = (name: string, source: GPUBuffer) => {
      if (!capture) return;
      pass.end();
      const bytes = rows * c.hiddenSize * 4;
      const buffer = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ, label: `capture ${name}` });
      encoder.copyBufferToBuffer(source, 0, buffer, 0, bytes);
      captures.push({ name, buffer, bytes });
      pass = encoder.beginComputePass();
    };

    const D = c.hiddenSize;
    const kvDim = c.numKvHeads * c.headDim;
    if (!isPacked(this.embedTokens)) {
      kernels.embed(pass, arena, { rows, dim: D, pastLen, ids: B.ids, tokens: this.embedTokens, positions: this.embedPositions, out: B.x });
    } else {
      kernels.embedPacked(pass, arena, { rows, pastLen, ids: B.ids, table: this.embedTokens, positions: this.embedPositions, out: B.x });
    }
    snapshot('hidden.0', B.x);
    this.blocks.forEach((block, i) => {
      const L = block.linears;
      const norm = (n: Norm) => kernels.norm(pass, arena, { rows, dim: D, eps: c.normEps, kind: c.norm, x: B.x, weight: n.weight, bias: n.bias, out: B.xn });
      norm(block.attnNorm);
      L['attn.q'].encode(pass, B.xn, B.q, rows);
      const kv = this.kvCache;
      const kOut = kv ? B.kRows : pastLen === 0 ? block.kCache : B.kNew;
      const vOut = kv ? B.vRows : pastLen === 0 ? block.vCache : B.vNew;
      if (pastLen !== 0 && rows !== 1) throw new Error('decode steps take one token at a time');
      L['attn.k'].encode(pass, B.xn, kOut, rows);
      L['attn.v'].encode(pass, B.xn, vOut, rows);
      if (this.rope) {
        kernels.rope(pass, arena, { rows, heads: c.numHeads, headDim: c.headDim, pastLen, x: B.q, table: this.rope });
        kernels.rope(pass, arena, { rows, heads: c.numKvHeads, headDim: c.headDim, pastLen, x: kOut, table: this.rope });
      }
      if (kv) {
        // attention reads the quantized cache, the window's own rows included
        kernels.kvStore(pass, arena, { rows, kvDim, kv, rowOffset: pastLen, x: B.kRows, codes: block.kCache, scales: block.kScales! });
        kernels.kvStore(pass, arena, { rows, kvDim, kv, rowOffset: pastLen, x: B.vRows, codes: block.vCache, scales: block.vScales! });
        kernels.attentionKv(pass, arena, { rows, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, pastLen, kv, q: B.q, kCodes: block.kCache, kScales: block.kScales!, vCodes: block.vCache, vScales: block.vScales!, out: B.att });
      } else {
        if (pastLen !== 0) {
          kernels.copyInto(pass, arena, kvDim, block.kCache, pastLen * kvDim, B.kNew);
          kernels.copyInto(pass, arena, kvDim, block.vCache, pastLen * kvDim, B.vNew);
        }
        kernels.attention(pass, arena, { rows, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, pastLen, q: B.q, k: block.kCache, v: block.vCache, out: B.att });
      }
      L['attn.o'].encode(pass, B.att, B.tmp, rows);
      kernels.add(pass, arena, rows * D, B.x, B.tmp);
      norm(block.mlpNorm);
      const I = c.intermediateSize;
      if (c.mlp === 'swiglu') {
        L['mlp.gate'].encode(pass, B.xn, B.h1, rows);
        L['mlp.up'].encode(pass, B.xn, B.h2, rows);
        kernels.swiglu(pass, arena, rows * I, B.h1, B.h2);
      } else {
        L['mlp.up'].encode(pass, B.xn, B.h1, rows);
        kernels.gelu(pass, arena, rows * I, B.h1, c.activation === 'gelu' ? 'erf' : 'tanh');
      }
      L['mlp.down'].encode(pass, B.h1, B.tmp, rows);
      kernels.add(pass, arena, rows * D, B.x, B.tmp);
      snapshot(`hidden.${i + 1}`, B.x);
    });
    kernels.norm(pass, arena, { rows, dim: D, eps: c.normEps, kind: c.norm, x: B.x, weight: this.finalNorm.weight, bias: this.finalNorm.bias, out: B.xn });
    snapshot('final_norm', B.xn);
    for (let start = 0; start < rows; start += this.headChunk) {
      const n = Math.min(this.headChunk, rows - start);
      let input = B.xn;
      if (start > 0 || n < rows) {
        pass.end();
        encoder.copyBufferToBuffer(B.xn, start * D * 4, B.headIn, 0, n * D * 4);
        pass = encoder.beginComputePass();
        input = B.headIn;
      }
      this.head.encode(pass, input, B.logits, n);
      kernels.nll(pass, arena, { rows: n, vocab: c.vocabSize, targetOffset: start, logits: B.logits, targets: B.targets, nll: B.nll, argmax: B.argmax });
      const chunk = start / this.headChunk;
      if (keep) kernels.logSoftmax(pass, arena, { rows: n, vocab: c.vocabSize, targetOffset: start, logits: B.logits, logp: keep.chunks[chunk], refArgmax: keep.argmax });
      if (against) {
        kernels.kl(pass, arena, { rows: n, vocab: c.vocabSize, targetOffset: start, logits: B.logits, logp: against.chunks[chunk], refArgmax: against.argmax, targets: B.targets, kl: B.kl, agree: B.agree });
      }
    }
    pass.end();
    if (this.timestamps) {
      encoder.beginComputePass({ timestampWrites: { querySet: this.timestamps, endOfPassWriteIndex: 1 } }).end();
      encoder.resolveQuerySet(this.timestamps, 0, 2, B.timestamps, 0);
      encoder.copyBufferToBuffer(B.timestamps, 0, B.staging, this.maxRows * 16, 16);
    }
    encoder.copyBufferToBuffer(B.nll, 0, B.staging, 0, rows * 4);
    encoder.copyBufferToBuffer(B.argmax, 0, B.staging, this.maxRows * 4, rows * 4);
    if (against) {
      encoder.copyBufferToBuffer(B.kl, 0, B.staging, this.maxRows * 8, rows * 4);
      encoder.copyBufferToBuffer(B.agree, 0, B.staging, this.maxRows * 12, rows * 4);
    }
    arena.flush();
    device.queue.submit([encoder.finish()]);
    if (keep) keep.ids = ids.slice();
    await B.staging.mapAsync(GPUMapMode.READ);
    const mapped = B.staging.getMappedRange();
    const nll = new Float32Array(mapped.slice(0, rows * 4));
    const argmax = new Uint32Array(mapped.slice(this.maxRows * 4, this.maxRows * 4 + rows * 4));
    const compared = against
      ? { kl: new Float32Array(mapped.slice(this.maxRows * 8, this.maxRows * 8 + rows * 4)), agree: new Uint32Array(mapped.slice(this.maxRows * 12, this.maxRows * 12 + rows * 4)) }
      : {};
    let gpuSeconds: number | null = null;
    if (this.timestamps) {
      const [start, end] = new BigUint64Array(mapped.slice(this.maxRows * 16, this.maxRows * 16 + 16));
      // Some implementations report 0 or a backwards pair when a timestamp was not written.
      gpuSeconds = end > start ? Number(end - start) / 1e9 : null;
    }
    B.staging.unmap();
    for (const cap of captures) {
      await cap.buffer.mapAsync(GPUMapMode.READ);
      capture!(cap.name, new Float32Array(cap.buffer.getMappedRange().slice(0)));
      cap.buffer.destroy();
    }
    return { nll, argmax, gpuSeconds, ...compared };
  }

  // ---------------------------------------------------------- block by block (calibration)

  /**
   * Embeds one sample (rows ≤ maxRows tokens at positions 0 …) and copies the
   * residual stream [rows, hidden] into `state` at byte `offset`. Calibrated
   * methods keep every sample's stream there and push it through the blocks
   * one at a time (runBlock), quantizing each block before the next.
   */
  embedInto(ids: Int32Array, state: GPUBuffer, offset: number): void {
    const rows = ids.length;
    const c = this.config;
    if (rows < 1 || rows > this.maxRows) throw new Error(`a calibration sample of ${rows} tokens does not fit the executor's ${this.maxRows} positions`);
    for (const id of ids) if (id < 0 || id >= c.vocabSize) throw new Error(`token id ${id} is outside the vocabulary of ${c.vocabSize}`);
    const { device, kernels, arena } = this;
    const B = this.buffers;
    device.queue.writeBuffer(B.ids, 0, Uint32Array.from(ids));
    arena.reset();
    const encoder = device.createCommandEncoder({ label: 'embed (calibration)' });
    const pass = encoder.beginComputePass();
    if (!isPacked(this.embedTokens)) {
      kernels.embed(pass, arena, { rows, dim: c.hiddenSize, pastLen: 0, ids: B.ids, tokens: this.embedTokens, positions: this.embedPositions, out: B.x });
    } else {
      kernels.embedPacked(pass, arena, { rows, pastLen: 0, ids: B.ids, table: this.embedTokens, positions: this.embedPositions, out: B.x });
    }
    pass.end();
    encoder.copyBufferToBuffer(B.x, 0, state, offset, rows * c.hiddenSize * 4);
    arena.flush();
    device.queue.submit([encoder.finish()]);
  }

  /**
   * Runs block `index` on one sample's residual stream, rows [rows, hidden] at
   * byte `offset` of `state`, in place (positions 0 … rows − 1, no KV cache
   * kept beyond this call). `hook` sees the input of each group of linears —
   * 'attn-in' (q, k, v), 'o-in', 'mlp-in' (gate, up), 'down-in' — as a buffer
   * of [rows, K] floats, with an open command encoder to record into (the
   * compute pass is ended around it). With `writeBack` false the block's
   * output is not stored (a pass that only looks at the inputs). Submits; does not wait.
   */
  runBlock(index: number, state: GPUBuffer, offset: number, rows: number, hook?: BlockHook, writeBack = true): void {
    const c = this.config;
    const block = this.blocks[index];
    if (!block) throw new Error(`block ${index} does not exist: the model has ${this.blocks.length}`);
    if (this.kvCache) throw new Error('runBlock keeps keys and values in f32: load the calibration executor without kvCache');
    if (rows < 1 || rows > this.maxRows) throw new Error(`a calibration sample of ${rows} tokens does not fit the executor's ${this.maxRows} positions`);
    const { device, kernels, arena } = this;
    const B = this.buffers;
    const D = c.hiddenSize;
    const I = c.intermediateSize;
    arena.reset();
    const encoder = device.createCommandEncoder({ label: `block ${index} (calibration)` });
    encoder.copyBufferToBuffer(state, offset, B.x, 0, rows * D * 4);
    let pass = encoder.beginComputePass();
    const site = (name: LinearSite, buffer: GPUBuffer) => {
      if (!hook) return;
      pass.end();
      hook(name, buffer, rows, encoder);
      pass = encoder.beginComputePass();
    };
    const L = block.linears;
    const norm = (n: Norm) => kernels.norm(pass, arena, { rows, dim: D, eps: c.normEps, kind: c.norm, x: B.x, weight: n.weight, bias: n.bias, out: B.xn });
    norm(block.attnNorm);
    site('attn-in', B.xn);
    L['attn.q'].encode(pass, B.xn, B.q, rows);
    L['attn.k'].encode(pass, B.xn, block.kCache, rows);
    L['attn.v'].encode(pass, B.xn, block.vCache, rows);
    if (this.rope) {
      kernels.rope(pass, arena, { rows, heads: c.numHeads, headDim: c.headDim, pastLen: 0, x: B.q, table: this.rope });
      kernels.rope(pass, arena, { rows, heads: c.numKvHeads, headDim: c.headDim, pastLen: 0, x: block.kCache, table: this.rope });
    }
    kernels.attention(pass, arena, { rows, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, pastLen: 0, q: B.q, k: block.kCache, v: block.vCache, out: B.att });
    site('o-in', B.att);
    L['attn.o'].encode(pass, B.att, B.tmp, rows);
    kernels.add(pass, arena, rows * D, B.x, B.tmp);
    norm(block.mlpNorm);
    site('mlp-in', B.xn);
    if (c.mlp === 'swiglu') {
      L['mlp.gate'].encode(pass, B.xn, B.h1, rows);
      L['mlp.up'].encode(pass, B.xn, B.h2, rows);
      kernels.swiglu(pass, arena, rows * I, B.h1, B.h2);
    } else {
      L['mlp.up'].encode(pass, B.xn, B.h1, rows);
      kernels.gelu(pass, arena, rows * I, B.h1, c.activation === 'gelu' ? 'erf' : 'tanh');
    }
    site('down-in', B.h1);
    L['mlp.down'].encode(pass, B.h1, B.tmp, rows);
    kernels.add(pass, arena, rows * D, B.x, B.tmp);
    pass.end();
    if (writeBack) encoder.copyBufferToBuffer(B.x, 0, state, offset, rows * D * 4);
    arena.flush();
    device.queue.submit([encoder.finish()]);
  }

  /** Replaces one linear layer of block `index` (e.g. "attn.q") with `layer`, destroying the old one. */
  replaceLinear(index: number, name: string, layer: LinearLayer): void {
    const block = this.blocks[index];
    const old = block?.linears[name];
    if (!old) throw new Error(`block ${index} has no linear layer "${name}"`);
    if (layer.n !== old.n || layer.k !== old.k) throw new Error(`${name} of block ${index} is [${old.n}, ${old.k}]; the replacement is [${layer.n}, ${layer.k}]`);
    old.destroy();
    block.linears[name] = layer;
  }

  /** Overwrites the weight (and bias, for LayerNorm) of block `index`'s attention or MLP norm (AWQ folds its scales there). */
  setNorm(index: number, which: 'attn' | 'mlp', weight: Float32Array, bias: Float32Array | null): void {
    const norm = which === 'attn' ? this.blocks[index].attnNorm : this.blocks[index].mlpNorm;
    this.device.queue.writeBuffer(norm.weight, 0, weight);
    if (norm.bias && bias) this.device.queue.writeBuffer(norm.bias, 0, bias);
  }

  /** Frees every GPU buffer this executor holds. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const ledger = this.ledger;
    for (const b of Object.values(this.buffers)) ledger.release(b);
    for (const block of this.blocks) {
      for (const l of Object.values(block.linears)) l.destroy();
      for (const b of [block.attnNorm.weight, block.attnNorm.bias, block.mlpNorm.weight, block.mlpNorm.bias, block.kCache, block.vCache, block.kScales, block.vScales]) ledger.release(b);
    }
    for (const b of [this.embedPositions, this.finalNorm.weight, this.finalNorm.bias, this.rope]) ledger.release(b);
    this.head.destroy();
    // A tied head shares the packed table; releasing twice is harmless (the ledger ignores unknown buffers).
    if (isPacked(this.embedTokens)) releasePacked(ledger, this.embedTokens);
    else ledger.release(this.embedTokens);
    this.timestamps?.destroy();
    this.kernels.destroy();
    this.arena.destroy();
  }
}
