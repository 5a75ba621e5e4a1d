/**
 * The lab, headless: `npm run lab -- <command> ...` on Node + Dawn.
 *
 *   sweep   run every combination of models × methods × protocols, print a
 *           progress line per run and a table, write results.json,
 *           results.csv and frontier.svg (perplexity against weight MB) to --out.
 *
 *   export  quantize one model and write it as ONNX (MatMulNBits) or AutoAWQ
 *           safetensors; the header of src/cli/export.ts has its options.
 *
 *   npm run lab -- sweep --model qlab-llama-6m,qlab-gpt2-6m --methods none,rtn \
 *       --bits 8,4,3 --group 128 --protocol gptq,llamacpp [--slice N] [--out dir]
 *
 * --model     embedded ids (public/models/<id>), model directories in the Hub layout, or
 *             Hugging Face repo ids [@revision] (downloaded into $QLAB_HUB_CACHE, default
 *             ~/.cache/qlab/hub; a token for gated models from $HF_TOKEN)
 * --hub-base  the Hub's address (default https://huggingface.co; a mirror, or a test server)
 * --methods   none (the f32 baseline), rtn, awq, gptq, hqq (AWQ and GPTQ calibrate on
 *             public/data/calibration.txt; each runs every --bits × --group scheme)
 * --calibration NxL  calibration samples × tokens for awq/gptq (default sized for the model)
 * --act-order GPTQ with act-order (static groups)
 *             mixllm (W4 + a fraction of W8 output rows, ranked over the whole model),
 *             smoothquant (W8A8), atom (W4A4 with int8 outlier channels): calibrated on
 *             public/data/calibration.txt like awq/gptq
 * --high-fraction F  mixllm: fraction of rows at --high-bits (default 0.1, bits 8; low
 *             bits and group from --bits / --group: each low width × group is a run)
 * --mixllm-base LIST  mixllm's base quantizer per row set: rtn (default), gptq
 * --alpha A   smoothquant migration strength (default 0.5)
 * --outliers O  atom: int8 outlier channels (default 128; group from --group, default 128)
 * --kv LIST   KV cache: f32, 8, 4 (int8 / int4, groups of --kv-group, default 32); each
 *             method runs once per entry, e.g. --kv f32,8,4
 * --bits      RTN bit widths (2, 3, 4, 8)          --group  32, 64, 128 or row
 * --schemes   explicit RTN schemes instead of bits × group, e.g. w8-row,w4-g128,w2-g64
 * --sym       symmetric RTN (default asymmetric)   --head   quantize the output head too
 * --embed     quantize the token embedding table too (a tied head shares it)
 * --protocol  gptq, llamacpp (window 512 unless --seqlen)
 * --slice N   only the first N windows (default: the whole test set)
 * --check-reference  compare embedded models with tests/fixtures/reference (PyTorch)
 * --no-kl     skip the KL divergence / top-1 agreement against the f32 model
 *             (on by default for quantized runs of small models: src/lab/run.ts klByDefault)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ExperimentSpec, MethodSpec, Result } from '../core/experiment';
import { experimentName, methodName } from '../core/experiment';
import type { KvCacheSpec } from '../core/quant/kv';
import type { ProtocolName } from '../core/protocols';
import { runExperiment } from '../lab/run';
import { directorySource } from '../lab/source-node';
import { loadModel, type ModelSource } from '../lab/load';
import { DEFAULT_HUB_BASE, downloadHubModel, formatDownload, parseHubRef } from '../lab/hub';
import { directoryCache } from '../lab/hub-cache-node';
import type { ModelRef } from '../core/experiment';
import { frontierSvg } from '../ui/plot';
import { nodeDevice } from './dawn';
import { exportCommand } from './export';

/** The repository root: the nearest folder above this file with public/models (bundle or source). */
function findRoot(): string {
  let dir = resolve(new URL('.', import.meta.url).pathname);
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'public/models')) && existsSync(join(dir, 'package.json'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}
const root = findRoot();

interface SweepArgs {
  models: string[];
  methods: string[];
  bits: number[];
  groups: (number | 'row')[];
  schemes: string[];
  symmetric: boolean;
  head: boolean;
  embed: boolean;
  protocols: ProtocolName[];
  seqlen: number;
  slice: number | null;
  out: string;
  checkReference: boolean;
  /** false: --no-kl; undefined: runExperiment's default */
  kl: boolean | undefined;
  hubBase: string;
  /** awq/gptq calibration samples × tokens; null = the method's default */
  calibration: { samples: number; length: number } | null;
  actOrder: boolean;
  /** KV-cache settings to run each method with (null = f32) */
  kv: (KvCacheSpec | null)[];
  kvGroup: number;
  highFraction: number;
  highBits: 8 | 4;
  /** mixllm's base quantizers */
  mixBase: ('rtn' | 'gptq')[];
  alpha: number;
  outliers: number;
}

function usage(message: string): never {
  console.error(`lab: ${message}\nsee the header of src/cli/lab.ts or the README for the commands.`);
  process.exit(2);
}

function parseSweep(argv: string[]): SweepArgs {
  const a: SweepArgs = {
    models: ['qlab-llama-6m'], methods: ['none', 'rtn'], bits: [8, 4, 3, 2], groups: [128], schemes: [], symmetric: false, head: false, embed: false,
    protocols: ['gptq'], seqlen: 512, slice: null, out: 'lab-results', checkReference: false, kl: undefined, hubBase: DEFAULT_HUB_BASE,
    calibration: null, actOrder: false,
    kv: [null], kvGroup: 32, highFraction: 0.1, highBits: 8, mixBase: ['rtn'], alpha: 0.5, outliers: 128,
  };
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  let kvList = ['f32'];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => argv[++i] ?? usage(`${flag} needs a value`);
    switch (flag) {
      case '--model': a.models = list(value()); break;
      case '--methods': a.methods = list(value()); break;
      case '--bits': a.bits = list(value()).map(Number); break;
      case '--group': a.groups = list(value()).map((g) => (g === 'row' ? 'row' : Number(g))); break;
      case '--schemes': a.schemes = list(value()); break;
      case '--sym': a.symmetric = true; break;
      case '--head': a.head = true; break;
      case '--embed': a.embed = true; break;
      case '--protocol': a.protocols = list(value()) as ProtocolName[]; break;
      case '--seqlen': a.seqlen = Number(value()); break;
      case '--slice': a.slice = Number(value()); break;
      case '--out': a.out = value(); break;
      case '--check-reference': a.checkReference = true; break;
      case '--no-kl': a.kl = false; break;
      case '--hub-base': a.hubBase = value(); break;
      case '--calibration': {
        const m = /^(\d+)x(\d+)$/.exec(value());
        if (!m) usage('--calibration takes samples x tokens, e.g. 128x512');
        a.calibration = { samples: Number(m[1]), length: Number(m[2]) };
        break;
      }
      case '--act-order': a.actOrder = true; break;
      case '--kv': kvList = list(value()); break;
      case '--kv-group': a.kvGroup = Number(value()); break;
      case '--high-fraction': a.highFraction = Number(value()); break;
      case '--high-bits': a.highBits = Number(value()) as 8 | 4; break;
      case '--alpha': a.alpha = Number(value()); break;
      case '--mixllm-base': a.mixBase = list(value()).map((b) => (b === 'rtn' || b === 'gptq' ? b : usage(`--mixllm-base ${b}: choose rtn or gptq`))); break;
      case '--outliers': a.outliers = Number(value()); break;
      default: usage(`unknown option "${flag}"`);
    }
  }
  for (const m of a.methods) if (!['none', ...WEIGHT_METHODS, ...ACT_METHODS].includes(m)) usage(`unknown method "${m}"; this build knows none, ${[...WEIGHT_METHODS, ...ACT_METHODS].join(', ')}`);
  a.kv = kvList.map((k) => {
    if (k === 'f32' || k === 'none') return null;
    if (k !== '8' && k !== '4') usage(`--kv ${k}: choose f32, 8 or 4`);
    return { bits: Number(k) as 8 | 4, groupSize: a.kvGroup };
  });
  if (!(a.highFraction >= 0 && a.highFraction <= 1)) usage('--high-fraction takes a fraction from 0 to 1');
  if (!(a.alpha >= 0 && a.alpha <= 1)) usage('--alpha takes a migration strength from 0 to 1');
  for (const p of a.protocols) if (p !== 'gptq' && p !== 'llamacpp') usage(`unknown protocol "${p}"; use gptq or llamacpp`);
  for (const b of a.bits) if (![2, 3, 4, 8].includes(b)) usage(`--bits ${b}: RTN supports 2, 3, 4 and 8 bits`);
  if (a.slice !== null && !(Number.isInteger(a.slice) && a.slice > 0)) usage('--slice takes a positive number of windows');
  return a;
}

/** Methods of issue 8 (mixed precision, activation quantization), in the order they run. */
const ACT_METHODS = ['mixllm', 'smoothquant', 'atom'] as const;

/** The specs of mixllm (each low width below the high one × group), smoothquant and atom, as the sweep asks for them. */
function actSpecs(a: SweepArgs): MethodSpec[] {
  const calibration = a.calibration ?? undefined;
  const out: MethodSpec[] = [];
  if (a.methods.includes('mixllm')) {
    for (const base of a.mixBase) for (const bits of a.bits) for (const groupSize of a.groups) {
      if (bits < a.highBits && bits !== 8) out.push({ id: 'mixllm', highBits: a.highBits, lowBits: bits as 2 | 3 | 4, highFraction: a.highFraction, base, groupSize, calibration });
    }
  }
  if (a.methods.includes('smoothquant')) out.push({ id: 'smoothquant', alpha: a.alpha, calibration });
  if (a.methods.includes('atom')) out.push({ id: 'atom', outliers: a.outliers, groupSize: typeof a.groups[0] === 'number' ? a.groups[0] : 128, calibration });
  return out;
}

/** Weight-only methods that take --bits × --group (or --schemes), in the order they run. */
const WEIGHT_METHODS = ['rtn', 'awq', 'gptq', 'hqq'] as const;

/** The specs of one weight-only method over the sweep's schemes. */
function weightSpecs(a: SweepArgs, id: (typeof WEIGHT_METHODS)[number]): MethodSpec[] {
  return rtnSpecs(a).map((r): MethodSpec => {
    if (r.id !== 'rtn' || id === 'rtn') return r;
    const { id: _rtn, ...scheme } = r;
    if (id === 'hqq') return { id, ...scheme };
    const calibration = a.calibration ?? undefined;
    return id === 'awq' ? { id, ...scheme, calibration } : { id, ...scheme, calibration, actOrder: a.actOrder };
  });
}

function rtnSpecs(a: SweepArgs): MethodSpec[] {
  if (a.schemes.length) {
    return a.schemes.map((s) => {
      const m = /^w([2348])-(row|g\d+)$/.exec(s);
      if (!m) usage(`scheme "${s}" is not of the form w4-g128 or w8-row`);
      return { id: 'rtn', bits: Number(m[1]) as 2 | 3 | 4 | 8, groupSize: m[2] === 'row' ? 'row' : Number(m[2].slice(1)), symmetric: a.symmetric, quantizeHead: a.head, quantizeEmbeddings: a.embed };
    });
  }
  return a.bits.flatMap((bits) => a.groups.map((groupSize): MethodSpec => ({ id: 'rtn', bits: bits as 2 | 3 | 4 | 8, groupSize, symmetric: a.symmetric, quantizeHead: a.head, quantizeEmbeddings: a.embed })));
}

/** An embedded id, a folder with config.json, or a Hub repo id[@revision] (downloaded into the cache first). */
async function modelSource(model: string, hubBase: string): Promise<{ source: ModelSource; ref: ModelRef }> {
  const embedded = join(root, 'public/models', model);
  if (existsSync(join(embedded, 'config.json'))) return { source: directorySource(embedded), ref: { kind: 'embedded', id: model } };
  if (existsSync(join(model, 'config.json'))) return { source: directorySource(resolve(model)), ref: { kind: 'local', name: model } };
  if (existsSync(model)) usage(`"${model}" is a folder without config.json: qlab loads folders in the Hugging Face layout`);
  let ref: Extract<ModelRef, { kind: 'hub' }>;
  try {
    ref = parseHubRef(model);
  } catch {
    usage(`model "${model}" is neither an embedded model (public/models), nor a directory with config.json, nor a Hugging Face repo id (owner/name[@revision])`);
  }
  const source = await downloadHubModel(ref, {
    cache: directoryCache(),
    baseUrl: hubBase,
    token: process.env.HF_TOKEN || null,
    onProgress: (p) => process.stderr.write(`\r${formatDownload(p)}`.padEnd(100)),
  });
  process.stderr.write('\n');
  return { source, ref };
}

/** The PyTorch reference numbers for an embedded model and method, when there are some. */
function referenceFor(model: string, spec: ExperimentSpec): { ppl: number; windowNll: number[] } | null {
  const path = join(root, 'tests/fixtures/reference', model, 'reference.json');
  if (!existsSync(path)) return null;
  const ref = JSON.parse(readFileSync(path, 'utf8'));
  const m = spec.method;
  let entry = ref;
  if (m.id === 'rtn') {
    if (m.symmetric || m.quantizeHead || m.quantizeEmbeddings) return null;
    entry = ref.rtn?.[`w${m.bits}_${m.groupSize === 'row' ? 'row' : `g${m.groupSize}`}`];
  }
  const p = entry?.[spec.eval.protocol];
  if (!p || p.seqlen !== spec.eval.windowLength) return null;
  // Over the same windows as the run (a slice is the first n).
  const n = Math.min(spec.eval.windows ?? p.windows, p.windows);
  let nll = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    nll += p.window_nll[i];
    count += p.window_count[i];
  }
  return { ppl: Math.exp(nll / count), windowNll: p.window_nll };
}

function csv(results: Result[]): string {
  const head = ['model', 'method', 'protocol', 'windows', 'tokens', 'perplexity', 'perplexity_se', 'bits_per_weight', 'weight_bytes', 'peak_bytes', 'prefill_tok_s', 'decode_tok_s', 'prefill_gpu_tok_s', 'decode_gpu_tok_s', 'kl_divergence', 'kl_se', 'top1_agreement', 'kv_bytes_per_token', 'kv_context', 'kv_bits', 'activation_bits', 'seconds', 'device'];
  const rows = results.map((r) => {
    const m = r.metrics!;
    const model = r.spec.model.kind === 'embedded' ? r.spec.model.id : r.spec.model.kind === 'hub' ? r.spec.model.repo : r.spec.model.name;
    return [model, experimentName(r.spec), r.protocol.protocol, r.protocol.windows, r.protocol.scoredTokens, m.perplexity, m.perplexitySe, m.bitsPerWeight, m.weightBytes, m.peakBytes, m.prefillTokensPerSecond, m.decodeTokensPerSecond, m.prefillGpuTokensPerSecond ?? '', m.decodeGpuTokensPerSecond ?? '', m.klDivergence ?? '', m.klStdError ?? '', m.top1Agreement ?? '', m.kvBytesPerToken ?? '', m.kvContext ?? '', m.kvBits ?? '', m.activationBits ?? '', Object.values(r.timing).reduce((s, t) => s + t, 0), r.device.description || r.device.vendor]
      .map((v) => (typeof v === 'string' && /[,"]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v)))
      .join(',');
  });
  return [head.join(','), ...rows].join('\n') + '\n';
}

async function sweep(argv: string[]): Promise<void> {
  const a = parseSweep(argv);
  const { device, report } = await nodeDevice();
  console.log(`device: ${[report.vendor, report.architecture, report.description].filter(Boolean).join(' / ')}${report.isFallbackAdapter ? ' (fallback adapter)' : ''}`);
  const text = readFileSync(join(root, 'public/data/wikitext-2-raw-v1/test.txt'), 'utf8');
  const methods: MethodSpec[] = [...(a.methods.includes('none') ? [{ id: 'none' } as MethodSpec] : []), ...WEIGHT_METHODS.filter((m) => a.methods.includes(m)).flatMap((m) => weightSpecs(a, m)), ...actSpecs(a)];
  const calibrationText = readFileSync(join(root, 'public/data/calibration.txt'), 'utf8');
  mkdirSync(a.out, { recursive: true });
  const results: Result[] = [];
  const table: string[] = [];
  // KL columns whenever some run can have them (quantized methods); empty for the baseline
  const withKl = a.kl !== false && a.methods.some((m) => m !== 'none');
  const total = a.models.length * methods.length * a.kv.length * a.protocols.length;
  let n = 0;
  for (const model of a.models) {
    const { source, ref: modelRef } = await modelSource(model, a.hubBase);
    const loaded = await loadModel(source);
    const tokens = loaded.tokenizer!.encode(text);
    console.log(`${model}: WikiText-2 test = ${tokens.length.toLocaleString('en-US')} tokens`);
    for (const method of methods) {
      for (const kv of a.kv) for (const protocol of a.protocols) {
        n++;
        const spec: ExperimentSpec = { model: modelRef, method, eval: { protocol, windowLength: a.seqlen, windows: a.slice }, ...(kv ? { kv } : {}) };
        const label = `[${n}/${total}] ${model} ${experimentName(spec)} ${protocol}`;
        const result = await runExperiment(spec, {
          device, adapter: report, source, text, tokens, kl: a.kl, calibrationText,
          onProgress: (p) => {
            if (p.stage === 'quantize' && p.detail) process.stderr.write(`\r${label} quantize: ${p.detail}`.padEnd(120));
            if (p.stage === 'evaluate' && (p.done === p.total || p.done % 50 === 0)) {
              const width = 30;
              const bar = '#'.repeat(Math.round((p.done / p.total) * width)).padEnd(width, '.');
              process.stderr.write(`\r${label} [${bar}] ${p.done}/${p.total} ${p.detail ?? ''}   `);
            }
          },
        });
        process.stderr.write('\n');
        results.push(result);
        const m = result.metrics!;
        const ref = a.checkReference ? referenceFor(model, spec) : null;
        const diff = ref ? `${(((m.perplexity - ref.ppl) / ref.ppl) * 100).toFixed(4)} %` : '';
        const maxWindow = ref ? Math.max(...result.windowNll.map((v, i) => Math.abs(v - ref.windowNll[i]) / ref.windowNll[i])) : NaN;
        table.push([
          model.padEnd(16), experimentName(spec).padEnd(16), protocol.padEnd(9), String(result.protocol.windows).padStart(5),
          m.perplexity.toFixed(3).padStart(10), (ref ? ref.ppl.toFixed(3) : '').padStart(10), diff.padStart(11), (ref ? maxWindow.toExponential(1) : '').padStart(8),
          m.bitsPerWeight.toFixed(3).padStart(7), (m.weightBytes / 1e6).toFixed(2).padStart(8), Math.round(m.prefillTokensPerSecond).toString().padStart(9), Math.round(m.decodeTokensPerSecond).toString().padStart(8),
          ...(withKl ? [(m.klDivergence === undefined ? '' : m.klDivergence.toPrecision(3)).padStart(9), (m.top1Agreement === undefined ? '' : `${(m.top1Agreement * 100).toFixed(1)} %`).padStart(7)] : []),
        ].join(' '));
        writeFileSync(join(a.out, 'results.json'), JSON.stringify(results, null, 1));
        writeFileSync(join(a.out, 'results.csv'), csv(results));
        writeFileSync(join(a.out, 'frontier.svg'), frontierSvg(results, { x: 'weightMB', y: 'perplexity', width: 760, height: 420 }));
      }
    }
  }
  console.log(`\n${'model'.padEnd(16)} ${'method'.padEnd(16)} ${'protocol'.padEnd(9)} ${'win'.padStart(5)} ${'ppl'.padStart(10)} ${'pytorch'.padStart(10)} ${'diff'.padStart(11)} ${'max win'.padStart(8)} ${'bpw'.padStart(7)} ${'MB'.padStart(8)} ${'prefill/s'.padStart(9)} ${'decode/s'.padStart(8)}${withKl ? ` ${'kl'.padStart(9)} ${'top-1'.padStart(7)}` : ''}`);
  for (const line of table) console.log(line);
  console.log(`\nresults: ${join(a.out, 'results.json')}, results.csv and frontier.svg`);
  device.destroy();
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<void>> = { sweep, export: exportCommand };
if (!command || !commands[command]) usage(`unknown command "${command ?? ''}"; commands: ${Object.keys(commands).join(', ')}`);
commands[command](rest).catch((error: unknown) => {
  console.error(`lab ${command}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
