/**
 * Faults under a run, on a real Dawn device with a tiny random-weight Llama
 * built in memory (2 blocks, hidden 64: quick on SwiftShader):
 *
 * - numerical faults: one weight poisoned with NaN (or ∞) in a chosen layer;
 *   the run ends failed with `numericalFault` naming that layer, off the
 *   frontier, every buffer released;
 * - device loss: `device.destroy()` mid-evaluation and mid-load on a device of
 *   its own; the run ends interrupted with how far it got, every buffer
 *   released, and a new device runs the same experiment to the end;
 * - limits: a run whose largest buffer exceeds the device's maxBufferSize or
 *   maxStorageBufferBindingSize is refused before it starts, saying what fits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create, globals } from 'webgpu';
import { dawnDevice } from '../helpers/dawn';
import { readFileSync } from 'node:fs';
import { root, wikitextText } from '../helpers/reference';
import { llamaConfigJson } from '../unit/support/configs';
import { llamaTensors, singleFileModel, tinyTokenizerFiles, type Files } from '../unit/support/tiny-models';
import type { ExperimentSpec, Result } from '../../src/core/experiment';
import { paretoFrontier } from '../../src/core/pareto';
import { encodeFloats, toFloat32 } from '../../src/core/safetensors';
import { describeAdapter, requestLabDevice, type AdapterReport } from '../../src/gpu/device';
import { MemoryLedger } from '../../src/gpu/ledger';
import { blobSource, loadModel, type ModelSource } from '../../src/lab/load';
import { runExperiment, type RunOptions } from '../../src/lab/run';
import { withGpuErrorScopes } from '../../src/lab/faults';

/** the tiny model's files, with `poison` applied to one checkpoint tensor (element 7) */
function tinyModel(poison?: { tensor: string; value: number }): ModelSource {
  const built = llamaTensors(llamaConfigJson, 'F32');
  if (poison) {
    const t = built.list.find((x) => x.name === poison.tensor)!;
    const values = toFloat32(t.data, 'F32');
    values[7] = poison.value;
    t.data = encodeFloats(values, 'F32');
  }
  const files: Files = singleFileModel(llamaConfigJson, built, tinyTokenizerFiles()).files;
  return blobSource('tiny-llama', Object.fromEntries(Object.entries(files).map(([k, v]) => [k, new Blob([typeof v === 'string' ? v : new Uint8Array(v)])])));
}

const spec = (windows: number): ExperimentSpec => ({
  model: { kind: 'local', name: 'tiny-llama' },
  method: { id: 'none' },
  eval: { protocol: 'gptq', windowLength: 32, windows },
});

let device: GPUDevice;
let adapter: AdapterReport;
let text: string;
let tokens: number[];
beforeAll(async () => {
  const d = await dawnDevice();
  device = d.device;
  adapter = describeAdapter(d.adapter);
  text = wikitextText().slice(0, 6000);
  tokens = (await loadModel(tinyModel())).tokenizer!.encode(text);
});

/** Dawn instances stay referenced, or Dawn tears them (and their devices) down. */
const instances: unknown[] = [];
const spare: GPUDevice[] = [];
afterAll(() => {
  for (const d of spare) d.destroy();
});
/** A device of its own, to destroy. */
async function freshDevice(): Promise<GPUDevice> {
  Object.assign(globalThis, globals);
  const gpu = create(['disable-dawn-features=timestamp_quantization']);
  instances.push(gpu);
  const a = await gpu.requestAdapter();
  const d = await requestLabDevice(a!);
  spare.push(d);
  return d;
}

const options = (over: Partial<RunOptions> & { source: ModelSource }): RunOptions => ({ device, adapter, text, tokens, decodeSteps: 0, kl: false, ...over });

describe('numerical faults', () => {
  for (const [tensor, value, layer] of [
    ['model.layers.0.self_attn.q_proj.weight', Infinity, 'layers.0 (block 1 of 2)'],
    ['model.layers.1.mlp.down_proj.weight', NaN, 'layers.1 (block 2 of 2)'],
  ] as const) {
    it(`one ${value} in ${tensor}: the run fails with the fault located at ${layer}, off the frontier, buffers released`, async () => {
      const ledger = new MemoryLedger(device);
      const r = await runExperiment(spec(3), options({ source: tinyModel({ tensor, value }), ledger }));
      expect(r.status).toBe('failed');
      expect(r.metrics).toBeNull();
      expect(r.numericalFault).toEqual({ metric: 'nll', window: 0, position: expect.any(Number), value: expect.stringMatching(/^(NaN|-?Infinity)$/), layer });
      expect(r.error).toMatch(new RegExp(`window 1: the loss at position \\d+ is (NaN|-?Infinity).*first non-finite values appear after ${layer.replace(/[()]/g, '\\$&')}`));
      expect(ledger.snapshot().currentTotal).toBe(0);
      // JSON keeps it (what the store and exports write)
      expect((JSON.parse(JSON.stringify(r)) as Result).numericalFault).toEqual(r.numericalFault);
      if (!Number.isNaN(value)) return; // the frontier check once is enough
      // the same model unpoisoned is fine, and the faulted run stays off the frontier even with numbers beside it
      const good = await runExperiment(spec(3), options({ source: tinyModel(), ledger }));
      expect(good.status).toBe('done');
      expect(Number.isFinite(good.metrics!.perplexity)).toBe(true);
      const front = paretoFrontier([
        { id: good.id, x: 1, y: good.metrics!.perplexity },
        { id: r.id, x: 0.5, y: 1, fault: r.numericalFault ? `numerical fault at ${r.numericalFault.layer}` : null },
      ]);
      expect(front.frontier.map((p) => p.id)).toEqual([good.id]);
      expect(front.excluded).toEqual([{ id: r.id, reason: `numerical fault at ${layer}` }]);
    });
  }
});

describe('device loss', () => {
  it('device.destroy() mid-load: interrupted while loading, every buffer released; another device runs it to the end', async () => {
    const lost = await freshDevice();
    const ledger = new MemoryLedger(lost);
    const r = await runExperiment(spec(2), options({
      device: lost, ledger, source: tinyModel(),
      onProgress: (p) => {
        if (p.stage === 'load' && p.done === 5) lost.destroy();
      },
    }));
    expect(r.status).toBe('interrupted');
    expect(r.partial).toMatchObject({ stage: 'load', done: 5, windowsDone: 0 });
    expect(r.error).toMatch(/while loading the model onto the GPU \(tensor 5 of \d+\)/);
    expect(ledger.snapshot()).toMatchObject({ currentTotal: 0, buffers: 0 });
    // a run on a lost device ends at once, the same way; a token riding on its model reference stays out of the Result
    const leaky = { ...spec(2), model: { kind: 'local', name: 'tiny-llama', token: 'hf_secret123' } as unknown as ExperimentSpec['model'] };
    const again = await runExperiment(leaky, options({ device: lost, source: tinyModel() }));
    expect(again.status).toBe('interrupted');
    expect(again.spec.model).toEqual({ kind: 'local', name: 'tiny-llama' });
    expect(JSON.stringify(again)).not.toContain('hf_secret123');
    // another device goes on
    const ok = await runExperiment(spec(2), options({ source: tinyModel() }));
    expect(ok.status).toBe('done');
  });
});

describe('device loss during quantization', () => {
  it('device.destroy() while GPTQ calibrates on the GPU: interrupted while quantizing, every buffer released', async () => {
    const lost = await freshDevice();
    const ledger = new MemoryLedger(lost);
    const stages: string[] = [];
    const r = await runExperiment(
      { ...spec(2), method: { id: 'gptq', bits: 4, groupSize: 'row', symmetric: false, calibration: { samples: 2, length: 32 } } },
      options({
        device: lost, ledger, source: tinyModel(), calibrationText: readFileSync(`${root}public/data/calibration.txt`, 'utf8').slice(0, 4000),
        onProgress: (p) => {
          stages.push(p.stage);
          if (p.stage === 'quantize' && p.done === 1) lost.destroy();
        },
      }),
    );
    expect(stages).toContain('quantize');
    expect(r.status).toBe('interrupted');
    expect(r.partial).toMatchObject({ stage: 'quantize', done: 1 });
    expect(r.error).toMatch(/^The GPU device was lost \(it was destroyed.*\) while quantizing \(1 of \d+\)/);
    expect(ledger.snapshot()).toMatchObject({ currentTotal: 0, buffers: 0 });
  });
});

describe('limits', () => {
  it('a run whose largest buffer exceeds maxBufferSize is refused before it starts, saying what would fit', async () => {
    // the real device, reporting limits below the tiny model's f32 embedding table (300 × 64 × 4 = 76,800 bytes)
    const small = { ...device.limits, maxBufferSize: 65_536, maxStorageBufferBindingSize: 65_536 } as GPUSupportedLimits;
    const limited = new Proxy(device, { get: (t, k) => (k === 'limits' ? small : typeof Reflect.get(t, k) === 'function' ? (Reflect.get(t, k) as (...a: unknown[]) => unknown).bind(t) : Reflect.get(t, k)) });
    const ledger = new MemoryLedger(device);
    const run = runExperiment(spec(2), options({ device: limited, ledger, source: tinyModel() }));
    await expect(run).rejects.toThrow(/^f32 at a window of 32 does not fit this GPU: its largest buffer \(embed\.tokens, 76\.8 kB\) is over the adapter's maxBufferSize of 65\.5 kB\. What would fit: RTN W8 row with the embeddings and head quantized too \([\d.]+ kB\)\.$/);
    expect(ledger.snapshot().buffers).toBe(0);
  });

  it('a GPU error inside a run (here a buffer the device refuses) ends it with a message, not with numbers', async () => {
    const ledger = new MemoryLedger(device);
    const failing = withGpuErrorScopes(device, 'the test run', async () => {
      // MAP_READ may only go with COPY_DST: Dawn raises a validation error, and the buffer is invalid
      ledger.createBuffer('scratch', 64, GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE, 'refused buffer');
      return 'numbers';
    });
    await expect(failing).rejects.toThrow(/^The GPU refused an operation during the test run \(.+\): the run's numbers could not be trusted/);
    ledger.releaseAll();
    // the scopes are popped: the device works on
    await expect(withGpuErrorScopes(device, 'the next run', async () => 'fine')).resolves.toBe('fine');
  });
});

describe('device loss during evaluation', () => {
  it('device.destroy() after window 2 (the shared device, last): the run ends interrupted at window 2, every buffer released', async () => {
    // the file's shared device, its pipelines already compiled: this test comes last
    const lost = device;
    const ledger = new MemoryLedger(lost);
    const r = await runExperiment(spec(6), options({
      device: lost, ledger, source: tinyModel(),
      onProgress: (p) => {
        if (p.stage === 'evaluate' && p.done === 2) lost.destroy();
      },
    }));
    expect(r.status).toBe('interrupted');
    expect(r.metrics).toBeNull();
    expect(r.partial).toMatchObject({ stage: 'evaluate', done: 2, total: 6, windowsDone: 2, windowsTotal: 6 });
    expect(r.partial!.perplexity).toBeGreaterThan(1);
    expect(r.error).toMatch(/^The GPU device was lost \(it was destroyed.*\) during evaluation, after window 2 of 6 \(running perplexity [\d.]+\)\. The run is kept as interrupted/);
    expect(ledger.snapshot()).toMatchObject({ currentTotal: 0, buffers: 0 });
  });
});
