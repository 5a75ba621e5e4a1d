/**
 * Runs an exported ONNX model in onnxruntime-web (its wasm backend: the same
 * code in the page's worker, in Node tests and in the CLI) and measures
 * perplexity on evaluation windows with the lab's own protocol
 * (src/core/protocols.ts) and statistics (src/core/stats.ts): one session run
 * per window, NLL of every scored position from the logits by a float64
 * log-softmax.
 */
import type { EvalWindow } from '../core/protocols';
import { accumulate, emptyAccumulator, estimate, type PerplexityEstimate } from '../core/stats';

export interface OnnxPerplexity extends PerplexityEstimate {
  /** per-window NLL sums and scored counts, in window order */
  windowNll: number[];
  windowCount: number[];
  seconds: number;
  /** onnxruntime-web's version and the execution provider used */
  runtime: string;
}

export interface OnnxRunOptions {
  /**
   * How onnxruntime-web is loaded: `nodeOrt` (Node: tests, CLI; ort-node.ts)
   * or `browserOrt` (the page's worker, ort-browser.ts). Named by the caller
   * so the page's bundle holds only the wasm build.
   */
  ort: () => Promise<Ort>;
  /** where onnxruntime-web finds its .wasm/.mjs files (a folder URL ending in "/"); its default otherwise */
  wasmPaths?: string;
  /** wasm threads (Node has SharedArrayBuffer; a page only when cross-origin isolated); onnxruntime-web's default otherwise */
  numThreads?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, running: PerplexityEstimate) => void;
  /** for models exported with a KV cache */
  cache?: CacheShape;
}

export type Ort = typeof import('onnxruntime-web');
type Session = import('onnxruntime-web').InferenceSession;


async function ortRuntime(options: OnnxRunOptions): Promise<Ort> {
  const ort = await options.ort();
  if (options.wasmPaths) ort.env.wasm.wasmPaths = options.wasmPaths;
  if (options.numThreads) ort.env.wasm.numThreads = options.numThreads;
  return ort;
}

/** An inference session on the wasm backend for an exported model. */
export async function createOnnxSession(model: Uint8Array, options: OnnxRunOptions): Promise<{ ort: Ort; session: Session }> {
  const ort = await ortRuntime(options);
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  return { ort, session };
}

/** The cache's shape per layer, for models exported with a KV cache: [1, kvHeads, length, headDim]. */
export interface CacheShape {
  kvHeads: number;
  headDim: number;
}

/** logits [rows, vocab] of one sequence from position 0 (a model with a KV cache gets empty pasts). */
export async function onnxLogits(ort: Ort, session: Session, ids: ArrayLike<number>, cache?: CacheShape): Promise<Float32Array> {
  const feeds: Record<string, import('onnxruntime-web').Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(Array.from(ids, (t) => BigInt(t))), [1, ids.length]),
  };
  for (const name of session.inputNames) {
    if (!name.startsWith('past_key_values.')) continue;
    if (!cache) throw new Error(`the ONNX model takes ${name} (a KV cache): give its shape (kvHeads, headDim) to run it.`);
    feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, cache.kvHeads, 0, cache.headDim]);
  }
  const out = await session.run(feeds, ['logits']);
  const logits = out.logits;
  const data = logits.data as Float32Array;
  logits.dispose?.();
  return data;
}

/** Σ NLL, Σ NLL² and count over the scored positions of one window, from its logits. */
export function windowNllFromLogits(logits: Float32Array, vocab: number, targets: Int32Array): { nllSum: number; nllSquaredSum: number; scored: number } {
  let nllSum = 0;
  let nllSquaredSum = 0;
  let scored = 0;
  for (let r = 0; r < targets.length; r++) {
    const t = targets[r];
    if (t < 0) continue;
    const base = r * vocab;
    let max = -Infinity;
    for (let c = 0; c < vocab; c++) if (logits[base + c] > max) max = logits[base + c];
    let sum = 0;
    for (let c = 0; c < vocab; c++) sum += Math.exp(logits[base + c] - max);
    const nll = max + Math.log(sum) - logits[base + t];
    nllSum += nll;
    nllSquaredSum += nll * nll;
    scored++;
  }
  return { nllSum, nllSquaredSum, scored };
}

/** Perplexity of an exported model over `windows` (e.g. evalWindows(...) of a slice). */
export async function onnxPerplexity(model: Uint8Array, vocab: number, windows: Iterable<EvalWindow>, total: number, options: OnnxRunOptions): Promise<OnnxPerplexity> {
  const start = performance.now();
  const { ort, session } = await createOnnxSession(model, options);
  let acc = emptyAccumulator();
  const windowNll: number[] = [];
  const windowCount: number[] = [];
  try {
    for (const window of windows) {
      options.signal?.throwIfAborted();
      const logits = await onnxLogits(ort, session, window.inputIds, options.cache);
      if (logits.length !== window.inputIds.length * vocab) {
        throw new Error(`the ONNX model returned ${logits.length} logits for ${window.inputIds.length} tokens; a vocabulary of ${vocab} needs ${window.inputIds.length * vocab}.`);
      }
      const w = windowNllFromLogits(logits, vocab, window.targets);
      acc = accumulate(acc, w);
      windowNll.push(w.nllSum);
      windowCount.push(w.scored);
      options.onProgress?.(windowNll.length, total, estimate(acc));
    }
  } finally {
    await session.release();
  }
  return { ...estimate(acc), windowNll, windowCount, seconds: (performance.now() - start) / 1000, runtime: `onnxruntime-web ${ort.env.versions.web ?? ''} wasm`.trim() };
}
