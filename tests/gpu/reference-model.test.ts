/**
 * The embedded models on the WebGPU engine against the numbers PyTorch exported
 * (tests/fixtures/reference, float32, eager attention, TF32 off):
 *  - the residual stream after every block for the first 64 positions;
 *  - per-window NLL sums of the first windows of both protocols, f32 and RTN.
 * A slice small enough for SwiftShader; the full test set runs on a real GPU
 * (src/cli/lab.ts sweep, numbers in bench/results).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dawnDevice } from '../helpers/dawn';
import { maxRelError } from '../helpers/random';
import { EMBEDDED, firstWindow, modelDir, modelReference, wikitextText } from '../helpers/reference';
import type { ExperimentSpec, MethodSpec } from '../../src/core/experiment';
import { describeAdapter } from '../../src/gpu/device';
import { MemoryLedger } from '../../src/gpu/ledger';
import { F32Linear } from '../../src/gpu/linear';
import { DecoderExecutor } from '../../src/gpu/model';
import { loadModel } from '../../src/lab/load';
import { runExperiment, tensorReader } from '../../src/lab/run';
import { directorySource } from '../../src/lab/source-node';

// Window NLL sums: 1e-4 relative, the engine's promise. Hidden states: f32
// accumulation order differs from cuBLAS, so 2e-5 of the largest magnitude.
const WINDOW_TOL = 1e-4;
const HIDDEN_TOL = 2e-5;
const WINDOWS = 2;

let device: GPUDevice;
let adapter: GPUAdapter;
let text: string;
beforeAll(async () => {
  ({ device, adapter } = await dawnDevice());
  text = wikitextText();
});

for (const name of EMBEDDED) {
  describe(`${name} on WebGPU matches PyTorch`, () => {
    const ref = modelReference(name);
    let tokens: number[];

    it('tokenizes WikiText-2 to the reference token count', async () => {
      const model = await loadModel(directorySource(modelDir(name)));
      tokens = model.tokenizer!.encode(text);
      expect(tokens.length).toBe(ref.wikitext2_tokens);
      expect(tokens.slice(0, 512)).toEqual(ref.first_window_ids);
    });

    it('hidden states after each block, final norm and per-position NLL (first 64 positions)', async () => {
      const model = await loadModel(directorySource(modelDir(name)), { tokenizer: false });
      const ledger = new MemoryLedger(device);
      const exec = await DecoderExecutor.load(device, ledger, model.config, tensorReader(model), {
        maxRows: 64,
        linear: (n, w, rows, k, bias) => new F32Linear(ledger, w, rows, k, { bias: bias ?? undefined, label: n }),
      });
      const ids = Int32Array.from(ref.first_window_ids.slice(0, 64));
      const targets = Int32Array.from(ref.first_window_ids.slice(1, 65)).map((t, j) => (j < 63 ? t : -1));
      const got = new Map<string, Float32Array>();
      const score = await exec.forward(ids, targets, 0, (n, data) => got.set(n, data));
      const want = firstWindow(name);
      for (let i = 0; i <= model.config.numLayers; i++) {
        expect(maxRelError(got.get(`hidden.${i}`)!, want.tensor(`hidden.${i}`)), `hidden.${i}`).toBeLessThan(HIDDEN_TOL);
      }
      expect(maxRelError(got.get('final_norm')!, want.tensor('final_norm'))).toBeLessThan(HIDDEN_TOL);
      const nll = want.tensor('nll');
      for (let j = 0; j < 63; j++) expect(Math.abs(score.nll[j] - nll[j]), `position ${j}`).toBeLessThan(1e-4 * Math.max(1, nll[j]));
      exec.destroy();
      expect(ledger.snapshot().currentTotal).toBe(0);
    });

    const runs: [string, MethodSpec, (typeof ref)['gptq'] | undefined, (typeof ref)['llamacpp'] | undefined][] = [
      ['f32', { id: 'none' }, ref.gptq, ref.llamacpp],
      ['RTN W4 g128', { id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, ref.rtn.w4_g128?.gptq, ref.rtn.w4_g128?.llamacpp],
      ['RTN W2 g64', { id: 'rtn', bits: 2, groupSize: 64, symmetric: false }, ref.rtn.w2_g64?.gptq, undefined],
    ];
    for (const [label, method, gptq, llamacpp] of runs) {
      for (const [protocol, want] of [['gptq', gptq], ['llamacpp', llamacpp]] as const) {
        if (!want) continue;
        it(`${label}, ${protocol}: NLL of the first ${WINDOWS} windows within ${WINDOW_TOL} relative`, async () => {
          const spec: ExperimentSpec = { model: { kind: 'embedded', id: name }, method, eval: { protocol, windowLength: 512, windows: WINDOWS } };
          const result = await runExperiment(spec, { device, adapter: describeAdapter(adapter), source: directorySource(modelDir(name)), text, tokens, decodeSteps: 4 });
          expect(result.protocol.windows).toBe(WINDOWS);
          expect(result.protocol.windowsTotal).toBe(want.windows);
          result.windowNll.forEach((nll, w) => {
            expect(Math.abs(nll - want.window_nll[w]) / want.window_nll[w], `window ${w}`).toBeLessThan(WINDOW_TOL);
          });
          const m = result.metrics!;
          expect(m.bitsPerWeight).toBeCloseTo(method.id !== 'rtn' ? 32 : method.bits + (32 + 8) / (method.groupSize as number), 6);
          expect(m.decodeTokensPerSecond).toBeGreaterThan(0);
        });
      }
    }
  });
}
