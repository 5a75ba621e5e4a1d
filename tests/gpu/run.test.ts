/**
 * One experiment end to end on an embedded model (short windows, to stay
 * quick on SwiftShader): result fields, GPU timestamps, cancellation within a
 * window with every GPU buffer freed, KL divergence and top-1 agreement
 * against the f32 model, and clear errors for impossible specs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dawnDevice } from '../helpers/dawn';
import { modelDir, wikitextText } from '../helpers/reference';
import type { ExperimentSpec } from '../../src/core/experiment';
import { describeAdapter, type AdapterReport } from '../../src/gpu/device';
import { MemoryLedger } from '../../src/gpu/ledger';
import { runExperiment } from '../../src/lab/run';
import { directorySource } from '../../src/lab/source-node';
import { loadModel } from '../../src/lab/load';

const name = 'qlab-llama-6m';
let device: GPUDevice;
let adapter: AdapterReport;
let text: string;
let tokens: number[];
beforeAll(async () => {
  const d = await dawnDevice();
  device = d.device;
  adapter = describeAdapter(d.adapter);
  text = wikitextText().slice(0, 20_000);
  tokens = (await loadModel(directorySource(modelDir(name)))).tokenizer!.encode(text);
});

const spec = (windows: number | null, windowLength = 64): ExperimentSpec => ({
  model: { kind: 'embedded', id: name },
  method: { id: 'rtn', bits: 4, groupSize: 128, symmetric: false },
  eval: { protocol: 'gptq', windowLength, windows },
});

describe('runExperiment', () => {
  it('records how it measured: protocol, device, memory, speed, GPU time', async () => {
    const ledger = new MemoryLedger(device);
    const stages = new Set<string>();
    const r = await runExperiment(spec(3), { device, adapter, source: directorySource(modelDir(name)), text, tokens, ledger, decodeSteps: 8, onProgress: (p) => stages.add(p.stage) });
    expect(r.status).toBe('done');
    expect(r.protocol).toMatchObject({ protocol: 'gptq', windowLength: 64, windows: 3, scoredTokens: 3 * 63, textTokens: tokens.length });
    expect(r.windowNll).toHaveLength(3);
    const m = r.metrics!;
    expect(m.perplexity).toBeGreaterThan(1);
    expect(m.perplexity).toBeLessThan(4096);
    expect(m.bitsPerWeight).toBeCloseTo(4.3125, 6);
    // 7 linears per block quantized, embeddings and head in f32
    expect(m.quantizedParams).toBe(6 * (256 * 256 * 2 + 64 * 256 * 2 + 768 * 256 * 3));
    expect(m.peakBytes).toBeGreaterThanOrEqual(m.weightBytes);
    expect(m.decodeTokensPerSecond).toBeGreaterThan(0);
    if (adapter.features.includes('timestamp-query')) expect(m.prefillGpuTokensPerSecond).toBeGreaterThan(0);
    expect([...stages]).toEqual(expect.arrayContaining(['load', 'evaluate']));
    expect(r.device.vendor).toBe(adapter.vendor);
    expect(ledger.snapshot().currentTotal).toBe(0);
  });

  it('stops within one window when cancelled and frees every GPU buffer', async () => {
    const ledger = new MemoryLedger(device);
    const controller = new AbortController();
    let windowsDone = 0;
    const run = runExperiment(spec(null), {
      device, adapter, source: directorySource(modelDir(name)), text, tokens, ledger, signal: controller.signal,
      onProgress: (p) => {
        if (p.stage !== 'evaluate') return;
        windowsDone = p.done;
        if (p.done === 2) controller.abort();
      },
    });
    await expect(run).rejects.toThrow(/abort/i);
    expect(windowsDone).toBe(2);
    expect(ledger.snapshot().currentTotal).toBe(0);
  });

  it('measures KL divergence and top-1 agreement against the f32 model on the same windows', async () => {
    const source = directorySource(modelDir(name));
    const run = async (method: ExperimentSpec['method'], kl?: boolean) => {
      const ledger = new MemoryLedger(device);
      const r = await runExperiment({ ...spec(2), method }, { device, adapter, source, text, tokens, ledger, decodeSteps: 0, kl });
      expect(ledger.snapshot().currentTotal).toBe(0);
      return { m: r.metrics! };
    };
    const self = await run({ id: 'none' }, true);
    const w2 = await run({ id: 'rtn', bits: 2, groupSize: 64, symmetric: false });
    const w8 = await run({ id: 'rtn', bits: 8, groupSize: 'row', symmetric: false });
    const plain = await run({ id: 'rtn', bits: 8, groupSize: 'row', symmetric: false }, false);
    expect(Math.abs(self.m.klDivergence!)).toBeLessThanOrEqual(1e-6);
    expect(self.m.top1Agreement).toBe(1);
    expect(w2.m.klDivergence).toBeGreaterThan(0.01);
    expect(w2.m.klStdError).toBeGreaterThan(0);
    expect(w2.m.top1Agreement).toBeLessThan(1);
    expect(w8.m.klDivergence).toBeGreaterThan(0);
    expect(w8.m.klDivergence!).toBeLessThan(w2.m.klDivergence! / 20);
    expect(w8.m.top1Agreement).toBeGreaterThan(w2.m.top1Agreement!);
    // the comparison changes neither the perplexity nor the memory accounting of the quantized model
    expect(plain.m.klDivergence).toBeUndefined();
    expect(plain.m.perplexity).toBe(w8.m.perplexity);
    expect(plain.m.weightBytes).toBe(w8.m.weightBytes);
    expect(plain.m.peakBytes).toBe(w8.m.peakBytes);
  });

  it('refuses a window longer than the model context, saying what fits', async () => {
    await expect(runExperiment(spec(1, 1024), { device, adapter, source: directorySource(modelDir(name)), text, tokens })).rejects.toThrow(/context of 512: choose 512 or less/);
  });
});
