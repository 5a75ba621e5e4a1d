/**
 * Tiny random-weight llama, qwen2 and phi3 models built and saved by
 * transformers (tools/fixtures/tiny_models.py, run on the GPU machine; the
 * output is committed as tests/fixtures/tiny/), with PyTorch's float32 logits
 * on fixed ids: our mapping of transformers' checkpoints and configs (q/k/v
 * biases, tied head, fused qkv_proj and gate_up_proj, longrope with short and
 * long factors) must give the same logits on the CPU in float64 and the same
 * NLL and argmax on the GPU.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decoderForwardRef, nllRef } from '../../src/core/reference';
import { parseSafetensors } from '../../src/core/safetensors';
import { MemoryLedger } from '../../src/gpu/ledger';
import { F32Linear } from '../../src/gpu/linear';
import { DecoderExecutor } from '../../src/gpu/model';
import { loadModel } from '../../src/lab/load';
import { tensorReader } from '../../src/lab/run';
import { directorySource } from '../../src/lab/source-node';
import { dawnDevice } from '../helpers/dawn';

const fixtures = new URL('../fixtures/tiny', import.meta.url).pathname;
const present = existsSync(join(fixtures, 'manifest.json'));
const models = present ? readdirSync(fixtures).filter((d) => existsSync(join(fixtures, d, 'config.json'))).sort() : [];

let device: GPUDevice;
beforeAll(async () => {
  if (present) ({ device } = await dawnDevice());
});

function reference(dir: string): { lengths: number[]; ids(n: number): Int32Array; logits(n: number): Float32Array } {
  const bytes = new Uint8Array(readFileSync(join(dir, 'reference.safetensors')));
  const file = parseSafetensors(bytes, 'reference.safetensors');
  const lengths = JSON.parse(file.header.metadata.lengths) as number[];
  return {
    lengths,
    ids(n) {
      const e = file.header.tensors.get(`ids_${n}`)!;
      return new Int32Array(bytes.slice(e.begin, e.end).buffer);
    },
    logits: (n) => file.tensor(`logits_${n}`),
  };
}

describe.skipIf(!present)('tiny transformers models against their PyTorch logits (tests/fixtures/tiny)', () => {
  it('has the four models the script writes', () => {
    expect(models).toEqual(['llama', 'phi3', 'phi3-longrope', 'qwen2']);
  });
  for (const name of models) {
    it(`${name}: CPU float64 logits and GPU NLL/argmax match PyTorch`, async () => {
      const dir = join(fixtures, name);
      const model = await loadModel(directorySource(dir), { tokenizer: false });
      const c = model.config;
      expect(model.unexpectedTensors).toEqual([]);
      const tensors = new Map<string, Float32Array>();
      for await (const t of model.tensorsInOrder()) tensors.set(t.name, t.data);
      const ref = reference(dir);
      for (const n of ref.lengths) {
        const ids = ref.ids(n);
        const torchLogits = ref.logits(n);
        const ours = decoderForwardRef(c, (t) => tensors.get(t) ?? null, ids);
        let err = 0;
        let scale = 0;
        for (let i = 0; i < torchLogits.length; i++) {
          err = Math.max(err, Math.abs(ours.logits[i] - torchLogits[i]));
          scale = Math.max(scale, Math.abs(torchLogits[i]));
        }
        expect(err / scale, `${name} at ${n} tokens: max |logit difference| / max |logit|`).toBeLessThan(2e-5);

        const targets = Int32Array.from({ length: n }, (_, j) => (j + 1 < n ? ids[j + 1] : -1));
        const torchNll = nllRef(torchLogits, n, c.vocabSize, targets);
        const ledger = new MemoryLedger(device);
        const executor = await DecoderExecutor.load(device, ledger, c, tensorReader(model), {
          maxRows: n,
          linear: (label, w, rows, k, bias) => new F32Linear(ledger, w, rows, k, { bias: bias ?? undefined, label }),
        });
        const score = await executor.forward(ids, targets, 0);
        for (let j = 0; j < n - 1; j++) expect(Math.abs(score.nll[j] - torchNll.nll[j]), `${name} position ${j}`).toBeLessThan(1e-4 * Math.max(1, torchNll.nll[j]));
        expect(Array.from(score.argmax)).toEqual(Array.from(torchNll.argmax));
        executor.destroy();
      }
    });
  }
});

describe.runIf(!present)('tiny transformers models against their PyTorch logits', () => {
  it.skip('skipped: tests/fixtures/tiny is absent — run `python3 tools/fixtures/tiny_models.py --out <dir>` on the GPU machine and commit <dir> as tests/fixtures/tiny', () => {});
});
