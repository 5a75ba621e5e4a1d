/**
 * End to end: a random-weight model of Llama-3.2-1B's shapes (16 layers,
 * hidden 2048, 32 heads / 8 KV heads of 64, MLP 8192, vocabulary 128256, tied
 * f32 embeddings and head) through the lab's DecoderExecutor, its linear
 * layers quantized on load with RTN W4 g128 asym (the reference quantizer),
 * timed over a WikiText-2-sized token stream (gptq protocol, windows of 2048),
 * and single-token decode against the KV cache.
 *
 * The weights come from a TensorReader that draws them (xorshift, uniform in
 * ±0.034, copied out of one pool of 2^20 draws), so no 5 GB file is needed;
 * speed does not depend on values. RTN runs on the CPU at ~0.1 µs a weight,
 * so layers of one shape share the first one's quantization (the GPU still
 * holds a copy per layer).
 * The tokens are random ids; their count is the WikiText-2 test split's token
 * count under a given tokenizer (default 442,974: the lab's own tokenizer;
 * Llama 3's larger vocabulary gives fewer, so this overstates the work).
 */
import { readModelConfig } from '../src/core/families';
import { canonicalTensors, type DecoderConfig } from '../src/core/decoder';
import { evalWindows } from '../src/core/protocols';
import { quantizeRtn } from '../src/core/quant/rtn';
import type { PackedLinear } from '../src/core/quant/format';
import { MemoryLedger } from '../src/gpu/ledger';
import { F32Linear } from '../src/gpu/linear';
import { DecoderExecutor, type TensorReader } from '../src/gpu/model';
import { QuantLinear } from '../src/gpu/qlinear';
import { measurePerplexity } from '../src/lab/perplexity';

export const LLAMA_32_1B_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 128256,
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 64,
  hidden_act: 'silu',
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  tie_word_embeddings: true,
  attention_bias: false,
  mlp_bias: false,
  bos_token_id: 128000,
  eos_token_id: 128001,
};

export interface E2eOptions {
  /** a smaller config (tests on SwiftShader); default Llama-3.2-1B's */
  config?: DecoderConfig;
  tokens?: number;
  windowLength?: number;
  /** evaluate only the first n windows (the time is then also extrapolated to all) */
  windows?: number;
  decodeSteps?: number;
  log?: (line: string) => void;
}

export interface E2eResult {
  config: string;
  scheme: string;
  tokens: number;
  windowLength: number;
  windowsTotal: number;
  windowsRun: number;
  loadSeconds: number;
  pplSeconds: number;
  /** pplSeconds scaled to all windows when only some ran */
  pplSecondsAll: number;
  prefillTokensPerSecond: number;
  prefillGpuTokensPerSecond: number | null;
  decodeTokensPerSecond: number;
  decodeGpuTokensPerSecond: number | null;
  weightBytes: number;
  perplexity: number;
  kernels: string[];
}

export async function runE2e(device: GPUDevice, options: E2eOptions = {}): Promise<E2eResult> {
  const log = options.log ?? (() => {});
  const config = options.config ?? readModelConfig(LLAMA_32_1B_CONFIG).config;
  const windowLength = options.windowLength ?? 2048;
  const tokenCount = options.tokens ?? 442974;
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
    return seed;
  };
  // Random values are drawn once (a pool of 2^20 + 1, a prime-ish length so tensors do not repeat in step) and copied out.
  const pool = new Float32Array((1 << 20) + 7);
  for (let i = 0; i < pool.length; i++) pool[i] = ((next() + 0.5) / 2 ** 31 - 1) * 0.034;
  let offset = 0;
  function fill(count: number, scale: number): Float32Array {
    const out = new Float32Array(count);
    for (let o = 0; o < count; o += pool.length) {
      const start = (offset = (offset + 104729) % pool.length);
      const take = Math.min(pool.length - start, count - o);
      out.set(pool.subarray(start, start + take), o);
      if (take < Math.min(pool.length, count - o)) out.set(pool.subarray(0, Math.min(pool.length, count - o) - take), o + take);
    }
    if (scale !== 0.02) for (let i = 0; i < count; i++) out[i] *= scale / 0.02;
    return out;
  }
  // Every canonical tensor, drawn at the size the executor expects; norms are ones.
  const shapes = new Map(canonicalTensors(config).map((t) => [t.name, t.shape.reduce((x, y) => x * y, 1)]));
  const sized: TensorReader = async (name) => {
    const size = shapes.get(name);
    if (size === undefined) return null;
    return /norm\.weight$/.test(name) ? new Float32Array(size).fill(1) : fill(size, 0.02);
  };
  const ledger = new MemoryLedger(device);
  const t0 = performance.now();
  const kernels = new Set<string>();
  const quantized = new Map<string, PackedLinear>();
  const executor = await DecoderExecutor.load(device, ledger, config, sized, {
    maxRows: windowLength,
    linear: (name, w, n, k, bias, shared) => {
      if (name === 'head') return new F32Linear(ledger, shared ?? w, n, k, { bias: bias ?? undefined, label: name });
      // RTN on the CPU takes ~0.1 µs a weight: layers of one shape share the first one's quantization (speed does not depend on values)
      const key = `${n}x${k}`;
      let packed = quantized.get(key);
      if (!packed) quantized.set(key, (packed = quantizeRtn(w, n, k, { bits: 4, groupSize: 128, symmetric: false })));
      return new QuantLinear(ledger, packed, { bias: bias ?? undefined, label: name });
    },
    onLoad: (done, total) => {
      if (done % 20 === 0 || done === total) log(`e2e: loaded ${done}/${total} tensors, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    },
  });
  for (const v of executor.variants()) kernels.add(v);
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    const ids = new Int32Array(tokenCount);
    for (let i = 0; i < ids.length; i++) ids[i] = next() % config.vocabSize;
    const total = Math.floor(tokenCount / windowLength);
    const limit = options.windows ? Math.min(options.windows, total) : total;
    const windows = evalWindows('gptq', ids, { windowLength, limit, bosTokenId: config.bosTokenId, vocabSize: config.vocabSize });
    // one window first: pipeline compilation stays out of the timing
    await executor.forward(ids.slice(0, windowLength), new Int32Array(windowLength).fill(-1));
    const t1 = performance.now();
    const ppl = await measurePerplexity(executor, windows, limit, {
      onProgress: (p) => {
        if (p.window % 25 === 0) log(`e2e: window ${p.window}/${limit}, ${((performance.now() - t1) / 1000).toFixed(1)} s`);
      },
    });
    const pplSeconds = (performance.now() - t1) / 1000;

    // decode: prefill 16, then single-token steps
    const steps = options.decodeSteps ?? 64;
    const none = (n: number) => new Int32Array(n).fill(-1);
    await executor.forward(ids.slice(0, 16), none(16), 0);
    await executor.forward(ids.slice(16, 17), none(1), 16);
    let gpu: number | null = 0;
    const t2 = performance.now();
    for (let i = 1; i < steps; i++) {
      const s = await executor.forward(ids.slice(16 + i, 17 + i), none(1), 16 + i);
      gpu = s.gpuSeconds === null || gpu === null ? null : gpu + s.gpuSeconds;
    }
    const decodeSeconds = (performance.now() - t2) / 1000;
    return {
      config: `Llama-3.2-1B shapes: ${config.numLayers} layers, hidden ${config.hiddenSize}, MLP ${config.intermediateSize}, vocab ${config.vocabSize}, tied f32 head`,
      scheme: 'RTN W4 g128 asym (linears), f32 embeddings/head',
      tokens: tokenCount,
      windowLength,
      windowsTotal: total,
      windowsRun: limit,
      loadSeconds,
      pplSeconds,
      pplSecondsAll: (pplSeconds * total) / limit,
      prefillTokensPerSecond: ppl.tokensPerSecond,
      prefillGpuTokensPerSecond: ppl.gpuTokensPerSecond ?? null,
      decodeTokensPerSecond: (steps - 1) / decodeSeconds,
      decodeGpuTokensPerSecond: gpu ? (steps - 1) / gpu : null,
      weightBytes: ledger.snapshot().current.weights,
      perplexity: ppl.perplexity,
      kernels: [...kernels],
    };
  } finally {
    executor.destroy();
    ledger.releaseAll();
  }
}
