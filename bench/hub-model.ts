/**
 * A realistically sized model through the Hub path, on the GPU machine:
 *
 *   node dist-node/hub-model.mjs [--config qwen2.5-0.5b|llama-3.2-1b|tiny] [--method w4-g128|f32|w8-row|...]
 *       [--seqlen 512] [--slice 4] [--kl] [--shard-mb 512] [--keep DIR] [--json OUT.json]
 *
 * 1. write: a random-weight model of the real config (f16 safetensors shards of
 *    about --shard-mb MiB and an index, the embedded tokenizer: its ids < 4096 are valid in
 *    any of these vocabularies) into a temporary folder, tensor by tensor;
 * 2. download: a local Hub stand-in on 127.0.0.1 serves that folder in the
 *    Hub's URL layout and the lab downloads it into a fresh cache folder
 *    (src/lab/hub.ts: resumable, checked);
 * 3. plan: the memory plan against the adapter's limits;
 * 4. run: runExperiment on the cached files as the page and the CLI run it —
 *    weights streamed tensor by tensor, quantized on load (RTN) — over the
 *    first `slice` WikiText-2 windows, then decode speed.
 *
 * Prints the time per stage, peak GPU bytes from the ledger (by category),
 * the plan's estimate beside them, and the process's peak resident memory
 * (the model is never whole in JS memory).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ExperimentSpec, MethodSpec } from '../src/core/experiment';
import { methodName } from '../src/core/experiment';
import { readModelConfig } from '../src/core/families';
import { nodeDevice } from '../src/cli/dawn';
import { downloadHubModel } from '../src/lab/hub';
import { directoryCache } from '../src/lab/hub-cache-node';
import { loadModel } from '../src/lab/load';
import { formatBytes, planExperiment } from '../src/lab/memory-plan';
import { runExperiment } from '../src/lab/run';
import { startHubServer } from '../tests/helpers/hub-server';
import { tinyConfig, writeModelDir, type TinyFamily } from '../tests/helpers/tiny-models';

const CONFIGS: Record<string, { family: TinyFamily; repo: string; config: Record<string, unknown> }> = {
  'qwen2.5-0.5b': {
    family: 'qwen2',
    repo: 'random/Qwen2.5-0.5B-shapes',
    config: {
      architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14,
      num_key_value_heads: 2, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000.0, tie_word_embeddings: true, vocab_size: 151936,
      hidden_act: 'silu', bos_token_id: 151643, eos_token_id: 151643, use_sliding_window: false, sliding_window: 32768, max_window_layers: 21, torch_dtype: 'float16',
    },
  },
  'llama-3.2-1b': {
    family: 'llama',
    repo: 'random/Llama-3.2-1B-shapes',
    config: {
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32,
      num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000.0, tie_word_embeddings: true, vocab_size: 128256,
      hidden_act: 'silu', bos_token_id: 128000, eos_token_id: 128001, attention_bias: false, mlp_bias: false, torch_dtype: 'float16',
      rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    },
  },
  tiny: { family: 'qwen2', repo: 'random/tiny-qwen2', config: { ...tinyConfig('qwen2'), torch_dtype: 'float16' } },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function method(text: string): MethodSpec {
  if (text === 'f32' || text === 'none') return { id: 'none' };
  const m = /^w([2348])-(row|g\d+)$/.exec(text);
  if (!m) throw new Error(`--method ${text}: use f32 or w<bits>-g<group> / w<bits>-row (e.g. w4-g128)`);
  return { id: 'rtn', bits: Number(m[1]) as 2 | 3 | 4 | 8, groupSize: m[2] === 'row' ? 'row' : Number(m[2].slice(1)), symmetric: false };
}

function findText(): string {
  let dir = resolve(new URL('.', import.meta.url).pathname);
  for (let i = 0; i < 6; i++) {
    try {
      return readFileSync(join(dir, 'public/data/wikitext-2-raw-v1/test.txt'), 'utf8');
    } catch {
      dir = resolve(dir, '..');
    }
  }
  return readFileSync(join(process.cwd(), 'public/data/wikitext-2-raw-v1/test.txt'), 'utf8');
}

async function main(): Promise<void> {
  const which = arg('config', 'qwen2.5-0.5b');
  const chosen = CONFIGS[which];
  if (!chosen) throw new Error(`--config ${which}: one of ${Object.keys(CONFIGS).join(', ')}`);
  const spec: ExperimentSpec = {
    model: { kind: 'hub', repo: chosen.repo, revision: 'main' },
    method: method(arg('method', which === 'tiny' ? 'w4-g32' : 'w4-g128')),
    eval: { protocol: 'gptq', windowLength: Number(arg('seqlen', which === 'tiny' ? '64' : '512')), windows: Number(arg('slice', '4')) },
  };
  const kl = process.argv.includes('--kl') ? true : undefined;
  const keep = arg('keep', '');
  const work = keep || mkdtempSync(join(tmpdir(), 'qlab-hub-model-'));
  const stages: Record<string, number> = {};
  let rssPeak = 0;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);
  const lap = async <T>(name: string, f: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    const out = await f();
    stages[name] = (performance.now() - t0) / 1000;
    console.log(`  ${name.padEnd(12)} ${stages[name].toFixed(2)} s`);
    return out;
  };
  const server = await startHubServer();
  try {
    const { device, report } = await nodeDevice();
    console.log(`device: ${[report.vendor, report.architecture, report.description].filter(Boolean).join(' / ')}${report.isFallbackAdapter ? ' (fallback adapter)' : ''}`);
    console.log(`model: random weights with ${which}'s config (${chosen.config.model_type}), f16 shards; ${methodName(spec.method)}, window ${spec.eval.windowLength}, ${spec.eval.windows} windows`);
    const modelDir = join(work, 'model');
    const shardBytes = Number(arg('shard-mb', '512')) * 2 ** 20;
    const bytes = await lap('write', () => writeModelDir(modelDir, chosen.family, chosen.config, { dtype: 'F16', shardBytes }));
    console.log(`  (${formatBytes(bytes)} of f16 weights)`);
    server.putDirectory(chosen.repo, 'main', modelDir);
    const cache = directoryCache(join(work, 'cache'));
    let lastLine = 0;
    const source = await lap('download', () =>
      downloadHubModel({ repo: chosen.repo, revision: 'main' }, {
        cache,
        baseUrl: server.baseUrl,
        onProgress: (p) => {
          if (performance.now() - lastLine < 2000) return;
          lastLine = performance.now();
          console.log(`    ${p.file}: ${formatBytes(p.bytes)}${p.total ? ` of ${formatBytes(p.total)}` : ''} · ${formatBytes(p.bytesPerSecond)}/s`);
        },
      }),
    );
    const model = await lap('headers', () => loadModel(source));
    const text = findText();
    const tokens = await lap('tokenize', () => model.tokenizer!.encode(text));
    const limits = { maxBufferSize: device.limits.maxBufferSize, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize };
    const plan = planExperiment(model.config, spec, limits, { kl, timestamps: device.features.has('timestamp-query') });
    console.log(`  plan: ${formatBytes(plan.total)} (weights ${formatBytes(plan.weights)}, activations ${formatBytes(plan.activations)}, kv ${formatBytes(plan.kv)}, KL reference ${formatBytes(plan.klReference)})${plan.fits ? '' : ` — does not fit: ${plan.problems.join('; ')}`}`);
    let loadTick = 0;
    const result = await lap('run', () =>
      runExperiment(spec, {
        device, adapter: report, source, text, tokens, kl,
        onProgress: (p) => {
          if (p.stage === 'load' && p.done - loadTick >= p.total / 10) {
            loadTick = p.done;
            console.log(`    load ${p.done}/${p.total}${p.detail ? ` (${p.detail})` : ''}`);
          }
          if (p.stage === 'evaluate') console.log(`    window ${p.done}/${p.total} ${p.detail ?? ''}`);
        },
      }),
    );
    const m = result.metrics!;
    console.log('\nstages (s):', Object.entries({ ...stages, ...Object.fromEntries(Object.entries(result.timing).map(([k, v]) => [`run.${k}`, v])) }).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(' · '));
    console.log(`perplexity ${m.perplexity.toFixed(2)} ± ${m.perplexitySe.toFixed(2)} (random weights: only finite matters) · ${m.bitsPerWeight.toFixed(3)} bits/weight`);
    console.log(`GPU peak (ledger): ${formatBytes(m.peakBytes)} — ${Object.entries(m.peakByCategory).map(([k, v]) => `${k} ${formatBytes(v)}`).join(', ')}; plan said ${formatBytes(plan.run)} for the run${plan.klReference ? ` + ${formatBytes(plan.klReference)} KL reference` : ''}`);
    console.log(`weights on the GPU ${formatBytes(m.weightBytes)} vs ${formatBytes(bytes)} of f16 on disk · prefill ${Math.round(m.prefillTokensPerSecond)} tok/s · decode ${m.decodeTokensPerSecond.toFixed(1)} tok/s`);
    console.log(`process peak RSS ${formatBytes(rssPeak)} (the f16 files are ${formatBytes(bytes)})`);
    const json = arg('json', '');
    if (json) writeFileSync(json, JSON.stringify({ config: which, spec, stages, plan, result, rssPeak, weightFileBytes: bytes }, null, 1));
    if (!Number.isFinite(m.perplexity)) throw new Error('the perplexity is not finite');
    device.destroy();
  } finally {
    clearInterval(sampler);
    await server.close();
    if (!keep) rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`hub-model: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
