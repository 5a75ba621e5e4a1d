/**
 * `npm run lab -- export`: quantize a model with a method and write it in a
 * format an inference engine loads.
 *
 *   npm run lab -- export --model qlab-llama-6m --method rtn|awq|gptq|hqq --bits 4 --group 128 \
 *       --format onnx|autoawq --out exported [--sym] [--head] [--embed] [--verify [--slice N] [--seqlen N]]
 *
 * --format onnx      model.onnx (MatMulNBits for the quantized linears, src/export/onnx.ts)
 *                    beside config.json and the tokenizer files; with past_key_values.{i}.key|value
 *                    inputs and present.{i}.key|value outputs unless --no-kv-cache
 * --format autoawq   config.json with quantization_config + model.safetensors in AutoAWQ's
 *                    GEMM layout (W4 only, src/export/autoawq.ts), tokenizer files copied
 * --calibration NxL (awq, gptq) calibration samples × tokens from public/data/calibration.txt
 * --verify           (onnx) WikiText-2 perplexity through onnxruntime-web (wasm) on the first
 *                    --slice windows (default 4) of --seqlen (default 512), gptq protocol,
 *                    printed beside the lab's own number on the GPU (Dawn) for the same windows
 *
 * The model is quantized through the method interface (src/lab/methods), so
 * the file holds exactly the weights the lab evaluates.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { parseJsonObject } from '../core/config';
import type { DecoderConfig } from '../core/decoder';
import { methodName, type ExperimentSpec, type MethodSpec } from '../core/experiment';
import { evalWindows, type ProtocolName } from '../core/protocols';
import { exportAutoAwq } from '../export/autoawq';
import { exportOnnx } from '../export/onnx';
import { onnxPerplexity } from '../export/onnx-verify';
import { nodeOrt } from '../export/ort-node';
import { collectWeights, exportNeeds, modelReader, prepareWeights } from '../export/weights';
import { loadModel } from '../lab/load';
import { runExperiment } from '../lab/run';
import { directorySource } from '../lab/source-node';
import { nodeDevice } from './dawn';

function findRoot(): string {
  let dir = resolve(new URL('.', import.meta.url).pathname);
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'public/models')) && existsSync(join(dir, 'package.json'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}

export interface ExportArgs {
  model: string;
  method: string;
  bits: number;
  group: number | 'row';
  symmetric: boolean;
  head: boolean;
  embed: boolean;
  format: 'onnx' | 'autoawq';
  out: string;
  verify: boolean;
  /** --no-kv-cache: an ONNX graph without past/present key-value inputs and outputs */
  noKvCache: boolean;
  /** --calibration NxL: AWQ/GPTQ calibration samples × tokens (the method's default otherwise) */
  calibration: { samples: number; length: number } | null;
  slice: number;
  seqlen: number;
  protocol: ProtocolName;
}

class UsageError extends Error {}

export function parseExportArgs(argv: string[]): ExportArgs {
  const a: ExportArgs = {
    model: 'qlab-llama-6m', method: 'rtn', bits: 4, group: 128, symmetric: false, head: false, embed: false,
    format: 'onnx', out: 'exported', verify: false, noKvCache: false, calibration: null, slice: 4, seqlen: 512, protocol: 'gptq',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--model': a.model = value(); break;
      case '--method': case '--methods': a.method = value(); break;
      case '--bits': a.bits = Number(value()); break;
      case '--group': { const g = value(); a.group = g === 'row' ? 'row' : Number(g); break; }
      case '--sym': a.symmetric = true; break;
      case '--head': a.head = true; break;
      case '--embed': a.embed = true; break;
      case '--format': a.format = value() as ExportArgs['format']; break;
      case '--out': a.out = value(); break;
      case '--verify': a.verify = true; break;
      case '--no-kv-cache': a.noKvCache = true; break;
      case '--calibration': {
        const m = /^(\d+)x(\d+)$/.exec(value());
        if (!m) throw new UsageError('--calibration takes samples x tokens, e.g. 128x512');
        a.calibration = { samples: Number(m[1]), length: Number(m[2]) };
        break;
      }
      case '--slice': a.slice = Number(value()); break;
      case '--seqlen': a.seqlen = Number(value()); break;
      case '--protocol': a.protocol = value() as ProtocolName; break;
      default: throw new UsageError(`unknown option "${flag}"`);
    }
  }
  if (a.format !== 'onnx' && a.format !== 'autoawq') throw new UsageError(`--format ${a.format}: choose onnx or autoawq`);
  if (![2, 3, 4, 8].includes(a.bits)) throw new UsageError(`--bits ${a.bits}: choose 2, 3, 4 or 8`);
  if (a.group !== 'row' && !(Number.isInteger(a.group) && a.group > 0)) throw new UsageError('--group takes 32, 64, 128 or row');
  if (!(Number.isInteger(a.slice) && a.slice > 0)) throw new UsageError('--slice takes a positive number of windows');
  if (a.protocol !== 'gptq' && a.protocol !== 'llamacpp') throw new UsageError(`--protocol ${a.protocol}: choose gptq or llamacpp`);
  return a;
}

/** The method spec the flags describe: none, or rtn / awq / gptq / hqq with the scheme flags (each method's defaults otherwise). */
export function exportMethod(a: ExportArgs): MethodSpec {
  if (a.method === 'none' || a.method === 'f32') return { id: 'none' };
  const calibration = a.calibration && (a.method === 'awq' || a.method === 'gptq') ? { calibration: a.calibration } : {};
  return { id: a.method, bits: a.bits, groupSize: a.group, symmetric: a.symmetric, quantizeHead: a.head, quantizeEmbeddings: a.embed, ...calibration } as MethodSpec;
}

const MODEL_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json'];

export async function exportCommand(argv: string[]): Promise<void> {
  let a: ExportArgs;
  try {
    a = parseExportArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`lab export: ${error.message}\nsee the header of src/cli/export.ts or the README.`);
      process.exit(2);
    }
    throw error;
  }
  const root = findRoot();
  const embedded = join(root, 'public/models', a.model);
  const dir = existsSync(join(embedded, 'config.json')) ? embedded : existsSync(join(a.model, 'config.json')) ? resolve(a.model) : null;
  if (!dir) throw new Error(`model "${a.model}" is neither an embedded model (public/models) nor a directory with config.json`);
  const method = exportMethod(a);
  const model = await loadModel(directorySource(dir));
  console.log(`${a.model}: ${model.config.family}, ${model.config.numLayers} layers, hidden ${model.config.hiddenSize}; method ${methodName(method)}; format ${a.format}`);

  const t0 = performance.now();
  // AWQ and GPTQ calibrate on the GPU (Dawn) with public/data/calibration.txt
  const needs = exportNeeds(method);
  const gpu = needs.device ? await nodeDevice() : null;
  const calibrationTokens = needs.calibration ? model.tokenizer!.encode(readFileSync(join(root, 'public/data/calibration.txt'), 'utf8')) : undefined;
  let prepared;
  try {
    prepared = await prepareWeights(method, model.config, modelReader(model), {
      device: gpu?.device, calibrationTokens,
      onProgress: (p) => process.stderr.write(`\r${p.stage} ${p.done}${p.total ? `/${p.total}` : ''} ${p.item ?? ''}   `),
    });
  } catch (error) {
    gpu?.device.destroy();
    throw error;
  }
  const weights = await collectWeights(model.config, prepared, (done, total) => process.stderr.write(`\rquantize [${'#'.repeat(Math.round((done / total) * 30)).padEnd(30, '.')}] ${done}/${total}`));
  process.stderr.write('\n');
  gpu?.device.destroy();
  const sourceConfig = parseJsonObject(readFileSync(join(dir, 'config.json'), 'utf8'), 'config.json');
  // build the file first, so a refused export leaves no folder behind
  const files: { name: string; bytes: Uint8Array | string }[] = [];
  let onnxBytes: Uint8Array | null = null;
  if (a.format === 'autoawq') {
    const awq = exportAutoAwq(weights, model.family, sourceConfig);
    files.push({ name: 'model.safetensors', bytes: awq.safetensors }, { name: 'config.json', bytes: JSON.stringify(awq.config, null, 2) + '\n' });
  } else {
    onnxBytes = exportOnnx(weights, { kvCache: !a.noKvCache, metadata: { source: a.model, method: methodName(method), producer: 'qlab' } });
    files.push({ name: 'model.onnx', bytes: onnxBytes }, { name: 'config.json', bytes: JSON.stringify(sourceConfig, null, 2) + '\n' });
  }
  mkdirSync(a.out, { recursive: true });
  for (const f of MODEL_FILES) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(a.out, f));
  for (const f of files) writeFileSync(join(a.out, f.name), f.bytes);
  const written = files.map((f) => (typeof f.bytes === 'string' ? f.name : `${f.name} (${(f.bytes.length / 1e6).toFixed(2)} MB)`));
  if (onnxBytes && a.verify) {
    const tokens = model.tokenizer!.encode(readFileSync(join(root, 'public/data/wikitext-2-raw-v1/test.txt'), 'utf8'));
    await verify(a, root, dir, onnxBytes, method, model.config, tokens, model.tokenizer!.bosTokenId ?? model.config.bosTokenId);
  }
  console.log(`wrote ${written.join(', ')} and the tokenizer files to ${a.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/**
 * Where onnxruntime-web's wasm backend is: node_modules in a checkout, else
 * the brotli-packed copy beside the bundle (dist-node/ort, scripts/build-node.mjs),
 * unpacked once into a temporary folder.
 */
function ortWasmDir(root: string): string {
  const modules = join(root, 'node_modules/onnxruntime-web/dist');
  if (existsSync(join(modules, 'ort-wasm-simd-threaded.wasm'))) return modules;
  const packed = resolve(new URL('.', import.meta.url).pathname, 'ort');
  const wasm = join(packed, 'ort-wasm-simd-threaded.wasm.br');
  if (!existsSync(wasm)) throw new Error(`--verify needs onnxruntime-web's wasm backend, in ${modules} or ${packed}: run npm ci, or npm run build:node and take dist-node/ along.`);
  const dir = join(tmpdir(), `qlab-ort-wasm-${statSync(wasm).size}`);
  if (!existsSync(join(dir, 'ort-wasm-simd-threaded.wasm'))) {
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(packed, 'ort-wasm-simd-threaded.mjs'), join(dir, 'ort-wasm-simd-threaded.mjs'));
    writeFileSync(join(dir, 'ort-wasm-simd-threaded.wasm'), brotliDecompressSync(readFileSync(wasm)));
  }
  return dir;
}

async function verify(a: ExportArgs, root: string, dir: string, bytes: Uint8Array, method: MethodSpec, config: DecoderConfig, tokens: number[], bos: number | null): Promise<void> {
  const vocab = config.vocabSize;
  const wasmDir = ortWasmDir(root);
  const windows = () => evalWindows(a.protocol, tokens, { windowLength: a.seqlen, limit: a.slice, bosTokenId: bos, vocabSize: vocab });
  const total = Math.min(a.slice, Math.floor(tokens.length / a.seqlen));
  const onnx = await onnxPerplexity(bytes, vocab, windows(), total, {
    ort: nodeOrt,
    cache: { kvHeads: config.numKvHeads, headDim: config.headDim },
    wasmPaths: `${pathToFileURL(wasmDir).href}/`,
    numThreads: Math.max(1, Math.min(16, availableParallelism())),
    onProgress: (done, n, e) => process.stderr.write(`\ronnxruntime-web: window ${done}/${n}, ppl ${e.perplexity.toFixed(3)}   `),
  });
  process.stderr.write('\n');
  console.log(`onnxruntime-web (${onnx.runtime}): ppl ${onnx.perplexity.toFixed(4)} over ${onnx.windows} windows of ${a.seqlen} (${a.protocol}), ${onnx.seconds.toFixed(1)} s`);
  // the lab's own number on the GPU for the same windows
  const { device, report } = await nodeDevice();
  try {
    const spec: ExperimentSpec = { model: { kind: 'local', name: a.model }, method, eval: { protocol: a.protocol, windowLength: a.seqlen, windows: a.slice } };
    const text = readFileSync(join(root, 'public/data/wikitext-2-raw-v1/test.txt'), 'utf8');
    const calibrationText = readFileSync(join(root, 'public/data/calibration.txt'), 'utf8');
    // the run quantizes again with the same method and calibration, so its weights are the exported ones
    const result = await runExperiment(spec, { device, adapter: report, source: directorySource(dir), text, tokens, calibrationText, kl: false, decodeSteps: 0 });
    const lab = result.metrics!.perplexity;
    const diff = ((onnx.perplexity - lab) / lab) * 100;
    console.log(`lab (${report.description || report.vendor || 'WebGPU'}): ppl ${lab.toFixed(4)} — ONNX differs by ${diff.toFixed(4)} %${Math.abs(diff) > 0.5 ? ' (more than 0.5 %: check the export)' : ''}`);
  } finally {
    device.destroy();
  }
}
