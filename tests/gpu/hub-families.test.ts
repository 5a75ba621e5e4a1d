/**
 * Generated random-weight models of each family (llama, qwen2, phi3 with plain
 * and longrope RoPE, gpt2), served by the local Hub stand-in in f32/f16/bf16,
 * unsharded and sharded: downloaded, loaded through the same path as the page
 * and the CLI, and run on the GPU; hidden states, NLL and argmax against the
 * float64 CPU forward on the same canonical tensors. Then the memory plan
 * against the ledger of a real run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentSpec } from '../../src/core/experiment';
import { decoderForwardRef, nllRef } from '../../src/core/reference';
import { MemoryLedger } from '../../src/gpu/ledger';
import { F32Linear } from '../../src/gpu/linear';
import { DecoderExecutor } from '../../src/gpu/model';
import { directoryCache } from '../../src/lab/hub-cache-node';
import { downloadHubModel } from '../../src/lab/hub';
import { loadModel } from '../../src/lab/load';
import { planExperiment } from '../../src/lab/memory-plan';
import { runExperiment, tensorReader } from '../../src/lab/run';
import { dawnDevice } from '../helpers/dawn';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { maxRelError, rng } from '../helpers/random';
import { tinyModelFiles, type TinyFamily } from '../helpers/tiny-models';

let server: HubServer;
let cacheDir: string;
let device: GPUDevice;
let adapter: GPUAdapter;

beforeAll(async () => {
  ({ device, adapter } = await dawnDevice());
  server = await startHubServer();
  cacheDir = mkdtempSync(join(tmpdir(), 'qlab-hub-gpu-'));
});
afterAll(async () => {
  await server.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

const cases: { name: string; family: TinyFamily; dtype: 'F32' | 'F16' | 'BF16'; shards: number; longrope?: boolean; rows: number }[] = [
  { name: 'llama', family: 'llama', dtype: 'F32', shards: 1, rows: 13 },
  { name: 'qwen2', family: 'qwen2', dtype: 'F16', shards: 2, rows: 13 },
  { name: 'phi3', family: 'phi3', dtype: 'BF16', shards: 1, rows: 13 },
  // 70 positions > the original context of 64: longrope's long factors and attention scaling
  { name: 'phi3-longrope', family: 'phi3', dtype: 'F32', shards: 2, longrope: true, rows: 70 },
  { name: 'gpt2', family: 'gpt2', dtype: 'F16', shards: 2, rows: 13 },
];

describe('tiny models of each family, from the Hub stand-in to the GPU', () => {
  for (const c of cases) {
    it(`${c.name} (${c.dtype}, ${c.shards === 1 ? 'one file' : `${c.shards} shards`}) matches the float64 CPU forward`, async () => {
      server.put(`tiny/${c.name}`, 'main', tinyModelFiles(c.family, { dtype: c.dtype, shards: c.shards, longrope: c.longrope }));
      const source = await downloadHubModel({ repo: `tiny/${c.name}`, revision: 'main' }, { cache: directoryCache(cacheDir), baseUrl: server.baseUrl });
      const model = await loadModel(source);
      const config = model.config;
      expect(config.family).toBe(c.family);
      expect(model.files.length).toBe(c.shards);
      const tensors = new Map<string, Float32Array>();
      for await (const t of model.tensorsInOrder()) tensors.set(t.name, t.data);
      // token ids from the model's own tokenizer, as a run would use them
      const text = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief.';
      const encoded = model.tokenizer!.encode(text.repeat(4));
      expect(encoded.length).toBeGreaterThanOrEqual(c.rows);
      const ids = Int32Array.from(encoded.slice(0, c.rows));
      const targets = Int32Array.from({ length: c.rows }, (_, j) => (j + 1 < c.rows ? ids[j + 1] : -1));
      const ref = decoderForwardRef(config, (n) => tensors.get(n) ?? null, ids);
      const refNll = nllRef(ref.logits, c.rows, config.vocabSize, targets);

      const ledger = new MemoryLedger(device);
      const executor = await DecoderExecutor.load(device, ledger, config, tensorReader(model), {
        maxRows: c.rows,
        linear: (name, w, n, k, bias) => new F32Linear(ledger, w, n, k, { bias: bias ?? undefined, label: name }),
      });
      const hidden = new Map<string, Float32Array>();
      const score = await executor.forward(ids, targets, 0, (name, data) => hidden.set(name, data));
      for (let i = 0; i <= config.numLayers; i++) expect(maxRelError(hidden.get(`hidden.${i}`)!, ref.hidden[i]), `hidden.${i}`).toBeLessThan(2e-5);
      expect(maxRelError(hidden.get('final_norm')!, ref.finalNorm)).toBeLessThan(2e-5);
      for (let j = 0; j < c.rows - 1; j++) {
        expect(Number.isFinite(score.nll[j])).toBe(true);
        expect(Math.abs(score.nll[j] - refNll.nll[j]), `position ${j}`).toBeLessThan(1e-4 * Math.max(1, refNll.nll[j]));
      }
      expect(Array.from(score.argmax)).toEqual(Array.from(refNll.argmax));
      executor.destroy();
      expect(ledger.snapshot().currentTotal).toBe(0);
    });
  }
});

describe('memory plan against the ledger', () => {
  it('the estimate of a quantized run with its KL reference lands on what the run allocates', async () => {
    server.put('tiny/plan', 'main', tinyModelFiles('qwen2', { dtype: 'F16' }));
    const source = await downloadHubModel({ repo: 'tiny/plan', revision: 'main' }, { cache: directoryCache(cacheDir), baseUrl: server.baseUrl });
    const model = await loadModel(source);
    const r = rng(3);
    const tokens = Array.from({ length: 200 }, () => Math.floor(r() * 4000));
    const spec: ExperimentSpec = { model: { kind: 'hub', repo: 'tiny/plan', revision: 'main' }, method: { id: 'rtn', bits: 4, groupSize: 32, symmetric: false }, eval: { protocol: 'gptq', windowLength: 32, windows: 1 } };
    const limits = { maxBufferSize: device.limits.maxBufferSize, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize };
    const plan = planExperiment(model.config, spec, limits, { kl: true, timestamps: device.features.has('timestamp-query') });
    const report = { vendor: adapter.info.vendor, architecture: adapter.info.architecture, description: adapter.info.description, features: [] } as never;
    const result = await runExperiment(spec, { device, adapter: report, source, text: '', tokens, decodeSteps: 0, kl: true });
    const m = result.metrics!;
    expect(m.klDivergence).toBeGreaterThan(0);
    // the run's own ledger: weights exactly, the whole peak within 1 %
    expect(plan.weights).toBe(m.peakByCategory.weights);
    expect(Math.abs(plan.run - m.peakBytes) / m.peakBytes).toBeLessThan(0.01);
    expect(plan.klReference).toBeGreaterThan(plan.weights);
    expect(plan.fits).toBe(true);
    // a budget between the quantized run alone and run + reference: refused, naming the reference
    const tight = planExperiment(model.config, spec, { ...limits, budgetBytes: plan.run + plan.klReference / 2 }, { kl: true });
    expect(tight.fits).toBe(false);
    expect(tight.problems[0]).toMatch(/of it the f32 reference for KL divergence\) is over the budget/);
  });

  it('a tied f32 head multiplies with the embedding table: the table is on the GPU once, as the plan says', async () => {
    server.put('tiny/tied', 'main', tinyModelFiles('qwen2', { dtype: 'F16' }));
    const source = await downloadHubModel({ repo: 'tiny/tied', revision: 'main' }, { cache: directoryCache(cacheDir), baseUrl: server.baseUrl });
    const model = await loadModel(source);
    const c = model.config;
    expect(c.tiedEmbeddings).toBe(true);
    const tokens = Array.from({ length: 40 }, (_, i) => (i * 37) % 4000);
    const report = { vendor: adapter.info.vendor, architecture: adapter.info.architecture, description: adapter.info.description, features: [] } as never;
    const limits = { maxBufferSize: device.limits.maxBufferSize, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize };
    const table = c.vocabSize * c.hiddenSize * 4;
    for (const method of [{ id: 'none' }, { id: 'rtn', bits: 4, groupSize: 32, symmetric: false }] as const) {
      const spec: ExperimentSpec = { model: { kind: 'hub', repo: 'tiny/tied', revision: 'main' }, method, eval: { protocol: 'gptq', windowLength: 32, windows: 1 } };
      const result = await runExperiment(spec, { device, adapter: report, source, text: '', tokens, decodeSteps: 0, kl: false });
      const weights = result.metrics!.peakByCategory.weights;
      // every other weight is far smaller than the table: a second copy would more than double it
      expect(weights).toBeLessThan(1.9 * table);
      expect(weights).toBeGreaterThan(table);
      expect(planExperiment(c, spec, limits, { kl: false }).weights).toBe(weights);
    }
  });
});
