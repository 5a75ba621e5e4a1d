/**
 * GPTQ quantization time on the GPU, layer by layer, for a decoder of
 * Llama-3.2-1B's shapes with random weights (Node + Dawn).
 *
 *   node dist-node/bench-gptq.mjs [--layers 16] [--hidden 2048] [--intermediate 8192]
 *        [--heads 32] [--kv-heads 8] [--tokens 65536] [--batch 4096] [--bits 4]
 *        [--group 128|row] [--sym] [--act-order] [--no-share] [--out gptq.json]
 *
 * Protocol (printed with the results):
 * - per layer, four Hessians H = XᵀX, one per distinct input (attention
 *   input → q/k/v, attention output → o, MLP input → gate/up, MLP hidden →
 *   down), each from `tokens` rows of random X (default 128 × 512) made on the
 *   GPU in batches of `batch` rows; "hessian" is the time of the XᵀX
 *   dispatches alone (the random rows are made and timed apart, not counted).
 * - each of the 7 linear layers goes through `gptqQuantize` with random
 *   weights (uniform, scaled 1/√K); the stages are the ones it reports
 *   (prepare: diag H, λ, order, weights upload; cholesky; inverse; sweep;
 *   pack: packing and readback). With sharing (the default) q/k/v and
 *   gate/up reuse one factorization of their shared Hessian (`factor`), as a
 *   caller that shares Hessians would; --no-share factors H for every layer.
 * - times are wall clock around submits that are waited for, so they include
 *   launch gaps; the weights' CPU generation is not counted.
 */
import { writeFileSync } from 'node:fs';
import gptqBenchWgsl from '../shaders/gptq_bench.wgsl?raw';
import { schemeName, validatePacked, type QuantBits, type QuantScheme } from '../src/core/quant/format';
import { nodeDevice } from '../src/cli/dawn';
import { HessianAccumulator, factorHessian, gptqQuantize, type HessianFactor } from '../src/gpu/gptq';
import { MemoryLedger } from '../src/gpu/ledger';
import { cachedPipeline, dispatchGrid } from '../src/gpu/linear';

const args = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}
const flag = (name: string) => args.includes(`--${name}`);
const int = (name: string, fallback: number) => {
  const v = Number(option(name, String(fallback)));
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} ${option(name, '')}: a positive integer is needed.`);
  return v;
};

const LAYERS = int('layers', 16);
const HIDDEN = int('hidden', 2048);
const INTERMEDIATE = int('intermediate', 8192);
const HEADS = int('heads', 32);
const KV_HEADS = int('kv-heads', 8);
const TOKENS = int('tokens', 128 * 512);
const BATCH = Math.min(int('batch', 4096), TOKENS);
const GROUP = option('group', '128');
const SCHEME: QuantScheme = {
  bits: int('bits', 4) as QuantBits,
  groupSize: GROUP === 'row' ? 'row' : Number(GROUP),
  symmetric: flag('sym'),
};
const ACT_ORDER = flag('act-order');
const SHARE = !flag('no-share');
const OUT = option('out', '');
const KV_DIM = (HIDDEN / HEADS) * KV_HEADS;

type Input = 'attn' | 'attnOut' | 'mlp' | 'mlpHidden';
const INPUT_K: Record<Input, number> = { attn: HIDDEN, attnOut: HIDDEN, mlp: HIDDEN, mlpHidden: INTERMEDIATE };
const LINEARS: { name: string; n: number; input: Input }[] = [
  { name: 'q', n: HIDDEN, input: 'attn' },
  { name: 'k', n: KV_DIM, input: 'attn' },
  { name: 'v', n: KV_DIM, input: 'attn' },
  { name: 'o', n: HIDDEN, input: 'attnOut' },
  { name: 'gate', n: INTERMEDIATE, input: 'mlp' },
  { name: 'up', n: INTERMEDIATE, input: 'mlp' },
  { name: 'down', n: HIDDEN, input: 'mlpHidden' },
];
const STAGES = ['hessian', 'prepare', 'cholesky', 'inverse', 'sweep', 'pack'] as const;

let seed = 0x9e3779b9;
/** Uniform weights in [-1/√k, 1/√k) (xorshift32). */
function randomWeights(count: number, k: number): Float32Array {
  const out = new Float32Array(count);
  const scale = 1 / Math.sqrt(k);
  for (let i = 0; i < count; i++) {
    seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
    out[i] = ((seed + 0.5) / 2 ** 31 - 1) * scale;
  }
  return out;
}

const add = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [key, v] of Object.entries(from)) into[key] = (into[key] ?? 0) + v;
};
const fmt = (s: number | undefined) => (s ?? 0).toFixed(3).padStart(8);

async function main(): Promise<void> {
  const { device, report } = await nodeDevice();
  const ledger = new MemoryLedger(device);
  console.log(`qlab GPTQ bench — ${report.vendor} / ${report.architecture} / ${report.device || report.description}`);
  console.log(
    `model: ${LAYERS} layers, hidden ${HIDDEN}, intermediate ${INTERMEDIATE}, ${HEADS} heads / ${KV_HEADS} kv heads; ` +
      `${schemeName(SCHEME)}${ACT_ORDER ? ' act-order' : ''}; ${TOKENS} calibration rows per Hessian in batches of ${BATCH}; ` +
      `factorization ${SHARE ? 'shared by layers with one input' : 'per layer'}; random weights and inputs; seconds, wall clock`,
  );
  const maxK = Math.max(HIDDEN, INTERMEDIATE);
  const x = ledger.createBuffer('activations', BATCH * maxK * 4, GPUBufferUsage.STORAGE, 'bench.x');
  const fillParams = ledger.createBuffer('scratch', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'bench.fill');
  const fill = cachedPipeline(device, 'gptq_bench', gptqBenchWgsl, 'fillRandom', {});
  const fillGroup = device.createBindGroup({
    layout: fill.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: x } }, { binding: 1, resource: { buffer: fillParams } }],
  });

  // Warm-up: compile every pipeline (both sweep shapes) before anything is timed.
  for (const n of [32, 4224]) {
    const k = 256;
    const acc = new HessianAccumulator(ledger, k, 'warm-up');
    const encoder = device.createCommandEncoder();
    acc.add(encoder, x, Math.min(64, Math.floor(x.size / (4 * k))));
    device.queue.submit([encoder.finish()]);
    await gptqQuantize(ledger, randomWeights(n * k, k), n, k, acc, SCHEME, { actOrder: ACT_ORDER });
    acc.destroy();
  }

  const results: { layer: number; seconds: Record<string, number>; inputsSeconds: number; linears: { name: string; n: number; k: number; seconds: Record<string, number>; loss: number }[] }[] = [];
  const header = `${'layer'.padEnd(6)}${'linear'.padEnd(7)}${'N×K'.padEnd(12)}${STAGES.map((s) => s.padStart(9)).join('')}${'total'.padStart(9)}      loss`;
  console.log(header);
  const totals: Record<string, number> = {};
  const started = performance.now();
  for (let layer = 0; layer < LAYERS; layer++) {
    const layerSeconds: Record<string, number> = {};
    let inputsSeconds = 0;
    const hessians = new Map<Input, HessianAccumulator>();
    for (const input of Object.keys(INPUT_K) as Input[]) {
      const k = INPUT_K[input];
      const acc = new HessianAccumulator(ledger, k, `layers.${layer}.${input}.hessian`);
      hessians.set(input, acc);
      for (let r0 = 0; r0 < TOKENS; r0 += BATCH) {
        const rows = Math.min(BATCH, TOKENS - r0);
        let t = performance.now();
        device.queue.writeBuffer(fillParams, 0, new Uint32Array([rows * k, layer * 1_000_003 + r0 * 7 + k]));
        const fillEncoder = device.createCommandEncoder();
        const pass = fillEncoder.beginComputePass();
        pass.setPipeline(fill);
        pass.setBindGroup(0, fillGroup);
        const [gx, gy] = dispatchGrid(Math.ceil((rows * k) / 256), device.limits.maxComputeWorkgroupsPerDimension);
        pass.dispatchWorkgroups(gx, gy);
        pass.end();
        device.queue.submit([fillEncoder.finish()]);
        await device.queue.onSubmittedWorkDone();
        inputsSeconds += (performance.now() - t) / 1000;
        t = performance.now();
        const encoder = device.createCommandEncoder();
        acc.add(encoder, x, rows);
        device.queue.submit([encoder.finish()]);
        await device.queue.onSubmittedWorkDone();
        layerSeconds.hessian = (layerSeconds.hessian ?? 0) + (performance.now() - t) / 1000;
      }
    }
    const factors = new Map<Input, HessianFactor>();
    const linears: (typeof results)[number]['linears'] = [];
    for (const linear of LINEARS) {
      const k = INPUT_K[linear.input];
      const acc = hessians.get(linear.input)!;
      const seconds: Record<string, number> = {};
      let factor = factors.get(linear.input);
      if (SHARE && !factor) {
        factor = await factorHessian(ledger, acc.buffer, k, { actOrder: ACT_ORDER, seconds });
        factors.set(linear.input, factor);
      }
      const weight = randomWeights(linear.n * k, k);
      const result = await gptqQuantize(ledger, weight, linear.n, k, acc, SCHEME, { actOrder: ACT_ORDER, factor });
      validatePacked(result.packed, `layers.${layer}.${linear.name}`);
      add(seconds, result.seconds);
      add(layerSeconds, seconds);
      const total = Object.values(seconds).reduce((a, b) => a + b, 0);
      linears.push({ name: linear.name, n: linear.n, k, seconds, loss: result.loss });
      console.log(
        `${String(layer).padEnd(6)}${linear.name.padEnd(7)}${`${linear.n}×${k}`.padEnd(12)}` +
          `${STAGES.map((s) => (s === 'hessian' ? ' '.repeat(9) : ` ${fmt(seconds[s])}`)).join('')} ${fmt(total)}  ${result.loss.toExponential(3)}`,
      );
    }
    for (const f of factors.values()) ledger.release(f.u);
    for (const acc of hessians.values()) acc.destroy();
    const layerTotal = Object.values(layerSeconds).reduce((a, b) => a + b, 0);
    console.log(`${String(layer).padEnd(6)}${'all'.padEnd(7)}${''.padEnd(12)}${STAGES.map((s) => ` ${fmt(layerSeconds[s])}`).join('')} ${fmt(layerTotal)}   (random inputs ${inputsSeconds.toFixed(3)} s, not counted)`);
    add(totals, layerSeconds);
    results.push({ layer, seconds: layerSeconds, inputsSeconds, linears });
  }
  const total = Object.values(totals).reduce((a, b) => a + b, 0);
  console.log(`${'total'.padEnd(25)}${STAGES.map((s) => ` ${fmt(totals[s])}`).join('')} ${fmt(total)}`);
  console.log(`GPTQ of ${LAYERS} layers: ${total.toFixed(2)} s (wall ${((performance.now() - started) / 1000).toFixed(2)} s with input generation and weight creation); peak GPU memory ${(ledger.snapshot().peakTotal / 2 ** 20).toFixed(0)} MiB`);
  if (OUT) {
    writeFileSync(
      OUT,
      JSON.stringify(
        {
          bench: 'gptq',
          device: report,
          protocol: { layers: LAYERS, hidden: HIDDEN, intermediate: INTERMEDIATE, heads: HEADS, kvHeads: KV_HEADS, tokens: TOKENS, batch: BATCH, scheme: SCHEME, actOrder: ACT_ORDER, sharedFactorization: SHARE, timing: 'wall clock, submits waited for' },
          totals,
          totalSeconds: total,
          layers: results,
        },
        null,
        2,
      ),
    );
    console.log(`wrote ${OUT}`);
  }
  ledger.releaseAll();
  device.destroy();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
