/**
 * AWQ, GPTQ and HQQ through runExperiment (the page's and the CLI's path):
 * the calibration text reaches the method, progress comes as the 'quantize'
 * stage with a detail per layer, the method's stages land in the result's
 * timing and its choices in methodReport, and a cancel during calibration
 * stops the run. Tiny sizes (SwiftShader): 2 samples × 64 tokens, one window.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentSpec } from '../../src/core/experiment';
import { methodName } from '../../src/core/experiment';
import { describeAdapter, type AdapterReport } from '../../src/gpu/device';
import { MemoryLedger } from '../../src/gpu/ledger';
import { loadModel } from '../../src/lab/load';
import { runExperiment, type RunProgress } from '../../src/lab/run';
import { directorySource } from '../../src/lab/source-node';
import { dawnDevice } from '../helpers/dawn';
import { modelDir, root, wikitextText } from '../helpers/reference';

const name = 'qlab-gpt2-6m';
let device: GPUDevice;
let adapter: AdapterReport;
let text: string;
let tokens: number[];
const calibrationText = readFileSync(`${root}public/data/calibration.txt`, 'utf8').slice(0, 8000);
beforeAll(async () => {
  const d = await dawnDevice();
  device = d.device;
  adapter = describeAdapter(d.adapter);
  text = wikitextText().slice(0, 4000);
  tokens = (await loadModel(directorySource(modelDir(name)))).tokenizer!.encode(text);
});

const spec = (method: ExperimentSpec['method']): ExperimentSpec => ({ model: { kind: 'embedded', id: name }, method, eval: { protocol: 'gptq', windowLength: 64, windows: 1 } });
const calibration = { samples: 2, length: 64 };

describe('calibrated methods in runExperiment', () => {
  it('AWQ: calibration, progress per layer, stages in timing, α per block in the report', async () => {
    const progress: RunProgress[] = [];
    const ledger = new MemoryLedger(device);
    const method = { id: 'awq', bits: 4, groupSize: 128, symmetric: false, calibration, alphaPoints: 4, errorTokens: 64 } as const;
    expect(methodName(method)).toBe('AWQ W4 g128');
    const r = await runExperiment(spec(method), { device, adapter, source: directorySource(modelDir(name)), text, tokens, calibrationText, ledger, decodeSteps: 0, kl: false, onProgress: (p) => progress.push(p) });
    expect(r.metrics!.perplexity).toBeGreaterThan(1);
    expect(r.metrics!.bitsPerWeight).toBeCloseTo(4.3125, 6);
    const quantize = progress.filter((p) => p.stage === 'quantize');
    expect(quantize.some((p) => /block 1\/6: search α/.test(p.detail ?? ''))).toBe(true);
    expect(quantize.at(-1)).toMatchObject({ done: 6, total: 6 });
    expect(r.timing['prepare: search α']).toBeGreaterThan(0);
    expect(r.timing['prepare: clip']).toBeGreaterThan(0);
    const report = r.methodReport as { calibration: { tokens: number }; blocks: { alpha: Record<string, number>; clip: Record<string, number> }[] };
    expect(report.calibration.tokens).toBe(128);
    expect(report.blocks).toHaveLength(6);
    // GPT-2: heads = KV heads, so o is scaled; a GELU MLP leaves down unscaled
    expect(Object.keys(report.blocks[0].alpha).sort()).toEqual(['o', 'qkv', 'up']);
    expect(Object.keys(report.blocks[0].clip).sort()).toEqual(['attn.o', 'attn.v', 'mlp.down', 'mlp.up']);
    expect(ledger.snapshot().currentTotal).toBe(0);
  });

  it('GPTQ without calibration text says what it needs; a cancel during calibration stops the run', async () => {
    const source = directorySource(modelDir(name));
    const gptqSpec = spec({ id: 'gptq', bits: 3, groupSize: 128, symmetric: false, calibration });
    await expect(runExperiment(gptqSpec, { device, adapter, source, text, tokens, decodeSteps: 0, kl: false })).rejects.toThrow(/calibration text/);
    const controller = new AbortController();
    let seen = 0;
    const run = runExperiment(gptqSpec, {
      device, adapter, source, text, tokens, calibrationText, decodeSteps: 0, kl: false, signal: controller.signal,
      onProgress: (p) => {
        if (p.stage !== 'quantize') return;
        seen++;
        if (seen === 3) controller.abort();
      },
    });
    await expect(run).rejects.toThrow(/abort/i);
    expect(seen).toBeLessThan(8);
  });

  it('HQQ reports its iterations per layer and needs no calibration', async () => {
    const r = await runExperiment(spec({ id: 'hqq', bits: 3, groupSize: 128, symmetric: false }), { device, adapter, source: directorySource(modelDir(name)), text, tokens, decodeSteps: 0, kl: false });
    const layers = (r.methodReport as { layers: Record<string, { meanIterations: number; errorVsRtn: number }> }).layers;
    expect(Object.keys(layers)).toHaveLength(6 * 6);
    for (const l of Object.values(layers)) {
      expect(l.meanIterations).toBeGreaterThanOrEqual(1);
      expect(l.errorVsRtn).toBeLessThanOrEqual(1);
    }
    expect(methodName(r.spec.method)).toBe('HQQ W3 g128');
  });
});
