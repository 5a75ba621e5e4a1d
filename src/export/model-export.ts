/**
 * Exports as the page asks for them (through the worker): re-create a
 * result's quantized weights from its spec and write them as one file —
 * model.onnx, or a ZIP of the AutoAWQ checkpoint — or run the ONNX export
 * through onnxruntime-web on the result's first windows and set its
 * perplexity beside the lab's own over the same windows (from the result's
 * per-window NLLs).
 */
import { parseJsonObject } from '../core/config';
import { methodName, type Result } from '../core/experiment';
import { evalWindows, scoredPerWindow } from '../core/protocols';
import type { ModelSource } from '../lab/load';
import { loadModel } from '../lab/load';
import { exportAutoAwq } from './autoawq';
import { exportOnnx } from './onnx';
import { onnxPerplexity, type OnnxRunOptions } from './onnx-verify';
import { collectWeights, exportNeeds, modelReader, prepareWeights } from './weights';
import { zipStore, type ZipEntry } from './zip';

export type ExportFormat = 'onnx' | 'autoawq';

export interface ExportRequest {
  /** the result row whose model and method are exported (its spec; its windowNll for verify) */
  result: Pick<Result, 'spec' | 'protocol' | 'windowNll'>;
  /** a file to download, or an onnxruntime-web check of the ONNX export */
  action: { kind: 'download'; format: ExportFormat } | { kind: 'verify'; windows?: number };
}

export interface ExportProgress {
  stage: 'load' | 'quantize' | 'write' | 'verify';
  done: number;
  total: number;
  detail?: string;
}

export interface ExportedFile {
  kind: 'file';
  fileName: string;
  mime: string;
  bytes: Uint8Array;
}

export interface OnnxVerification {
  kind: 'verification';
  windows: number;
  windowLength: number;
  protocol: string;
  onnxPerplexity: number;
  /** the lab's perplexity over the same windows, from the result */
  labPerplexity: number;
  /** (onnx − lab) / lab, percent */
  differencePercent: number;
  runtime: string;
  seconds: number;
}

export interface ExportDeps {
  source: ModelSource;
  /** the WikiText-2 test text (verify only) */
  text?: () => Promise<string>;
  /** a GPU device and the calibration text, for methods that calibrate (AWQ, GPTQ) */
  device?: () => Promise<GPUDevice>;
  calibrationText?: () => Promise<string>;
  signal?: AbortSignal;
  /** how onnxruntime-web is loaded (verify only): browserOrt in the page's worker, nodeOrt in Node */
  ort?: OnnxRunOptions['ort'];
  onProgress?: (p: ExportProgress) => void;
}

/** Windows an ONNX check runs by default: enough for a number, short enough for a CPU. */
export const VERIFY_WINDOWS = 4;

/** A file name for an export: "qlab-llama-6m-rtn-w4-g128.onnx". */
export function exportFileName(result: ExportRequest['result'], format: ExportFormat): string {
  const m = result.spec.model;
  const model = m.kind === 'embedded' ? m.id : m.kind === 'hub' ? m.repo.split('/').pop()! : m.name;
  const method = methodName(result.spec.method).toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-|-$/g, '');
  return `${model}-${method}${format === 'onnx' ? '.onnx' : '-awq.zip'}`;
}

const COPIED = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json'];

export async function exportModel(request: ExportRequest, deps: ExportDeps): Promise<ExportedFile | OnnxVerification> {
  const { source, signal } = deps;
  const progress = (p: ExportProgress) => deps.onProgress?.(p);
  progress({ stage: 'load', done: 0, total: 1, detail: source.name });
  const method = request.result.spec.method;
  const needs = exportNeeds(method);
  const model = await loadModel(source, { tokenizer: request.action.kind === 'verify' || needs.calibration });
  if (needs.device && !deps.device) throw new Error(`${methodName(method)} calibrates on the GPU, which this export was not given.`);
  if (needs.calibration && !deps.calibrationText) throw new Error(`${methodName(method)} needs the calibration text, which this export was not given.`);
  const device = needs.device ? await deps.device!() : undefined;
  const calibrationTokens = needs.calibration ? model.tokenizer!.encode(await deps.calibrationText!()) : undefined;
  const prepared = await prepareWeights(method, model.config, modelReader(model), {
    device, calibrationTokens, signal,
    onProgress: (p) => progress({ stage: 'quantize', done: p.done, total: p.total, detail: p.item ?? p.stage }),
  });
  const weights = await collectWeights(model.config, prepared, (done, total) => {
    signal?.throwIfAborted();
    progress({ stage: 'quantize', done, total });
  });
  signal?.throwIfAborted();
  const action = request.action;
  if (action.kind === 'download' && action.format === 'autoawq') {
    progress({ stage: 'write', done: 0, total: 1, detail: 'AutoAWQ safetensors' });
    const files = exportAutoAwq(weights, model.family, parseJsonObject(await source.readText('config.json'), 'config.json'));
    const entries: ZipEntry[] = [
      { name: 'config.json', bytes: new TextEncoder().encode(JSON.stringify(files.config, null, 2) + '\n') },
      { name: 'model.safetensors', bytes: files.safetensors },
    ];
    for (const f of COPIED) if (await source.exists(f)) entries.push({ name: f, bytes: new TextEncoder().encode(await source.readText(f)) });
    return { kind: 'file', fileName: exportFileName(request.result, 'autoawq'), mime: 'application/zip', bytes: zipStore(entries) };
  }
  progress({ stage: 'write', done: 0, total: 1, detail: 'ONNX' });
  // with a KV cache, for generation; the check runs this same file (empty pasts)
  const bytes = exportOnnx(weights, { kvCache: true, metadata: { source: source.name, method: methodName(request.result.spec.method), producer: 'qlab' } });
  if (action.kind === 'download') return { kind: 'file', fileName: exportFileName(request.result, 'onnx'), mime: 'application/octet-stream', bytes };

  // verify: the result's first windows, its protocol
  if (!deps.text || !deps.ort) throw new Error('internal error: an ONNX check needs the WikiText-2 text and onnxruntime-web.');
  const { protocol, windowLength } = request.result.protocol;
  const n = Math.min(action.windows ?? VERIFY_WINDOWS, request.result.windowNll.length);
  if (n < 1) throw new Error('this result has no per-window numbers to compare with: run it again.');
  const tokens = model.tokenizer!.encode(await deps.text());
  const windows = evalWindows(protocol, tokens, { windowLength, limit: n, bosTokenId: model.tokenizer!.bosTokenId ?? model.config.bosTokenId, vocabSize: model.config.vocabSize });
  const onnx = await onnxPerplexity(bytes, model.config.vocabSize, windows, n, {
    ort: deps.ort,
    cache: { kvHeads: model.config.numKvHeads, headDim: model.config.headDim },
    signal,
    onProgress: (done, total, e) => progress({ stage: 'verify', done, total, detail: `onnxruntime-web ppl ${e.perplexity.toFixed(2)}` }),
  });
  const nll = request.result.windowNll.slice(0, n).reduce((a, b) => a + b, 0);
  const labPerplexity = Math.exp(nll / (n * scoredPerWindow({ name: protocol, windowLength })));
  return {
    kind: 'verification', windows: n, windowLength, protocol,
    onnxPerplexity: onnx.perplexity, labPerplexity, differencePercent: ((onnx.perplexity - labPerplexity) / labPerplexity) * 100,
    runtime: onnx.runtime, seconds: onnx.seconds,
  };
}

/** Fetches the calibration text (public/data/calibration.txt) from the lab's site, for AWQ and GPTQ exports. */
export async function fetchCalibrationText(siteRoot: URL, fetchFn: typeof fetch = fetch): Promise<string> {
  const url = new URL('data/calibration.txt', siteRoot).href;
  const response = await fetchFn(url);
  if (!response.ok) throw new Error(`Downloading the calibration text (${url}) failed with HTTP ${response.status}: the site is missing data/calibration.txt.`);
  return response.text();
}

/** Fetches and checks the WikiText-2 test text from the lab's site (the worker's verify). */
export async function fetchWikitext(siteRoot: URL, fetchFn: typeof fetch = fetch): Promise<string> {
  const { WIKITEXT2_TEST, verifyWikitext2Test } = await import('../core/wikitext');
  const url = new URL(WIKITEXT2_TEST.path, siteRoot).href;
  const response = await fetchFn(url);
  if (!response.ok) throw new Error(`Downloading the WikiText-2 test text (${url}) failed with HTTP ${response.status}: the site is missing ${WIKITEXT2_TEST.path}.`);
  return verifyWikitext2Test(new Uint8Array(await response.arrayBuffer()));
}
