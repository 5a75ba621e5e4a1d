/**
 * Perplexity evaluation protocols: how a token stream T (the whole test text,
 * tokenized once, no special tokens added) is cut into windows, and which
 * positions of each window are scored.
 *
 * gptq (GPTQ / AWQ / most quantization papers, `seqlen` usually 2048):
 *   W = floor(len(T) / seqlen) windows; the tail is dropped.
 *   window i: input = T[i·seqlen : (i+1)·seqlen]
 *   every position j = 0 … seqlen−2 is scored, predicting input[j+1]
 *   → seqlen − 1 scored tokens per window.
 *   (The reference code multiplies each window's mean loss by seqlen and
 *   divides the total by W·seqlen; with equal windows that is the same mean
 *   over all scored tokens as here. Where a tokenizer adds BOS — llama's —
 *   the reference tokenizes with it, so BOS appears once, at T[0]: callers
 *   reproducing those numbers prepend it to T themselves; see
 *   TextTokenizer.addsBosToken.)
 *
 * llamacpp (llama.cpp's `llama-perplexity`, n_ctx usually 512):
 *   W = floor(len(T) / n_ctx) windows; the tail is dropped.
 *   window i: input = [BOS] + T[i·n_ctx + 1 : (i+1)·n_ctx]
 *     (T[i·n_ctx] is replaced by BOS; when the model has no BOS, bosTokenId
 *     null, it is kept, as llama.cpp does for models that add none)
 *   positions j = floor(n_ctx/2) … n_ctx−2 are scored, predicting input[j+1]
 *   → n_ctx − 1 − floor(n_ctx/2) scored tokens per window (255 for 512):
 *   every scored token sees at least half a window of context.
 *
 * A slice is the first n windows of a protocol (n ≤ W).
 * Perplexity = exp(Σ NLL / Σ scored) over the windows evaluated (stats.ts).
 */

export type ProtocolName = 'gptq' | 'llamacpp';

export interface EvalWindow {
  /** 0-based window index in the protocol's window sequence */
  index: number;
  /** the model's input, one window long */
  inputIds: Int32Array;
  /** per input position, the token that position's logits must predict; -1 = not scored */
  targets: Int32Array;
  /** number of targets ≠ -1 */
  scored: number;
}

export interface ProtocolSpec {
  name: ProtocolName;
  /** window length: seqlen for gptq, n_ctx for llamacpp */
  windowLength: number;
}

function checkTokens(tokens: ArrayLike<number>, vocabSize?: number): void {
  if (vocabSize === undefined) return;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw new Error(`token ${i} of the evaluation text is ${t}, outside the model's vocabulary of ${vocabSize}: the tokenizer does not belong to this model.`);
    }
  }
}

function checkLength(name: ProtocolName, windowLength: number, min: number): void {
  if (!Number.isSafeInteger(windowLength) || windowLength < min) {
    throw new Error(`${name} protocol: window length ${windowLength} is invalid; expected an integer ≥ ${min}.`);
  }
}

/** Number of windows a protocol cuts from `tokenCount` tokens. */
export function windowCount(tokenCount: number, windowLength: number): number {
  return Math.floor(tokenCount / windowLength);
}

/** Scored tokens per window. */
export function scoredPerWindow(protocol: ProtocolSpec): number {
  const n = protocol.windowLength;
  return protocol.name === 'gptq' ? n - 1 : n - 1 - Math.floor(n / 2);
}

/** Window `index` of the gptq protocol. */
export function gptqWindow(tokens: ArrayLike<number>, seqlen: number, index: number): EvalWindow {
  checkLength('gptq', seqlen, 2);
  const total = windowCount(tokens.length, seqlen);
  if (!Number.isInteger(index) || index < 0 || index >= total) {
    throw new Error(`gptq protocol: window ${index} does not exist; ${tokens.length} tokens make ${total} windows of ${seqlen}.`);
  }
  const inputIds = new Int32Array(seqlen);
  for (let j = 0; j < seqlen; j++) inputIds[j] = tokens[index * seqlen + j];
  const targets = new Int32Array(seqlen).fill(-1);
  for (let j = 0; j < seqlen - 1; j++) targets[j] = inputIds[j + 1];
  return { index, inputIds, targets, scored: seqlen - 1 };
}

/** Window `index` of the llamacpp protocol. */
export function llamacppWindow(tokens: ArrayLike<number>, nCtx: number, index: number, bosTokenId: number | null): EvalWindow {
  checkLength('llamacpp', nCtx, 4);
  const total = windowCount(tokens.length, nCtx);
  if (!Number.isInteger(index) || index < 0 || index >= total) {
    throw new Error(`llamacpp protocol: window ${index} does not exist; ${tokens.length} tokens make ${total} windows of ${nCtx}.`);
  }
  const inputIds = new Int32Array(nCtx);
  for (let j = 0; j < nCtx; j++) inputIds[j] = tokens[index * nCtx + j];
  if (bosTokenId !== null) inputIds[0] = bosTokenId;
  const targets = new Int32Array(nCtx).fill(-1);
  const first = Math.floor(nCtx / 2);
  for (let j = first; j < nCtx - 1; j++) targets[j] = inputIds[j + 1];
  return { index, inputIds, targets, scored: nCtx - 1 - first };
}

export interface WindowOptions {
  /** gptq: seqlen; llamacpp: n_ctx */
  windowLength: number;
  /** a slice: only the first `limit` windows (all when absent) */
  limit?: number;
  /** llamacpp only: the BOS that replaces each window's first token (null: keep it) */
  bosTokenId?: number | null;
  /** when given, every token is checked to lie in [0, vocabSize) */
  vocabSize?: number;
}

/**
 * The windows of a protocol (or of a slice: the first `limit`), in order.
 * Windows are built on demand, so a full run never holds them all.
 */
export function* evalWindows(name: ProtocolName, tokens: ArrayLike<number>, options: WindowOptions): Generator<EvalWindow> {
  const total = windowCount(tokens.length, options.windowLength);
  const limit = options.limit ?? total;
  if (!Number.isInteger(limit) || limit < 0) throw new Error(`${name} protocol: slice of ${limit} windows is invalid; expected a non-negative integer.`);
  const n = Math.min(limit, total);
  checkTokens(tokens, options.vocabSize);
  if (name === 'llamacpp' && options.bosTokenId === undefined) {
    throw new Error('llamacpp protocol: bosTokenId must be given (null when the model has no BOS token).');
  }
  for (let i = 0; i < n; i++) {
    yield name === 'gptq' ? gptqWindow(tokens, options.windowLength, i) : llamacppWindow(tokens, options.windowLength, i, options.bosTokenId ?? null);
  }
}

/** What a result records about how it was measured ("Tools print their protocol"). */
export interface ProtocolSummary {
  protocol: ProtocolName;
  windowLength: number;
  /** windows the full protocol has */
  windowsTotal: number;
  /** windows evaluated (the slice) */
  windows: number;
  /** scored tokens in the evaluated windows */
  scoredTokens: number;
  /** tokens in the text */
  textTokens: number;
}

export function summarizeProtocol(name: ProtocolName, tokenCount: number, windowLength: number, limit?: number): ProtocolSummary {
  const windowsTotal = windowCount(tokenCount, windowLength);
  const windows = Math.min(limit ?? windowsTotal, windowsTotal);
  return {
    protocol: name,
    windowLength,
    windowsTotal,
    windows,
    scoredTokens: windows * scoredPerWindow({ name, windowLength }),
    textTokens: tokenCount,
  };
}
