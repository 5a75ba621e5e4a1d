/**
 * Timing of the calibrated methods on a model of realistic shape (Node + Dawn):
 * Llama-3.2-1B's blocks (hidden 2048, 16 layers, 32 heads / 8 KV heads,
 * intermediate 8192) with random weights, quantized layer by layer by AWQ and
 * GPTQ through their QuantMethod (calibration on the GPU, sequential), and
 * HQQ (CPU) over the same linears. Prints seconds per stage and writes JSON.
 *
 *   node dist-node/bench-calibrated.mjs [--methods awq,gptq,hqq] [--bits 4] [--group 128]
 *       [--samples 128] [--length 512] [--layers 16] [--hidden 2048] [--intermediate 8192]
 *       [--heads 32] [--kv-heads 8] [--vocab 32000] [--out file.json]
 *
 * Protocol: weights are seeded random values (xorshift, ±0.04 uniform, norms
 * 1), regenerated when read, so the f32 model never has to sit in JS memory;
 * calibration tokens are seeded random ids. The vocabulary is cut to 32000
 * by default: only the embedding gather touches it during calibration, and
 * the quantization time does not depend on it. Timings are wall clock per
 * method stage as the method reports them (MethodInput → report.seconds).
 */
import { writeFileSync } from 'node:fs';
import { readModelConfig } from '../src/core/families';
import { blockLinears, linearShape, type DecoderConfig } from '../src/core/decoder';
import type { TensorReader } from '../src/gpu/model';
import { nodeDevice } from '../src/cli/dawn';
import { awq } from '../src/lab/methods/awq';
import { gptq } from '../src/lab/methods/gptq';
import { hqq } from '../src/lab/methods/hqq';
import type { QuantBits } from '../src/core/quant/format';
import { LLAMA_32_1B_CONFIG } from './e2e';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const num = (name: string, fallback: number) => Number(opt(name, String(fallback)));

const config: DecoderConfig = readModelConfig({
  ...LLAMA_32_1B_CONFIG,
  vocab_size: num('vocab', 32000),
  num_hidden_layers: num('layers', 16),
  hidden_size: num('hidden', 2048),
  intermediate_size: num('intermediate', 8192),
  num_attention_heads: num('heads', 32),
  num_key_value_heads: num('kv-heads', 8),
  head_dim: num('hidden', 2048) / num('heads', 32),
  bos_token_id: 0,
  eos_token_id: 0,
}, 'bench config').config;
const methods = opt('methods', 'awq,gptq,hqq').split(',');
const scheme = { bits: num('bits', 4) as QuantBits, groupSize: num('group', 128), symmetric: false };
const calibration = { samples: num('samples', 128), length: num('length', 512) };
const out = opt('out', '');

/** Seeded values in [−scale, scale) for one tensor name (the same on every read). */
function randomTensor(name: string, count: number, scale: number): Float32Array {
  let s = 0x9e3779b9;
  for (let i = 0; i < name.length; i++) s = Math.imul(s ^ name.charCodeAt(i), 0x01000193) >>> 0;
  s ||= 1;
  const a = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = (s / 2 ** 31 - 1) * scale;
  }
  return a;
}

const read: TensorReader = async (name) => {
  const d = config.hiddenSize;
  if (name.endsWith('norm.weight')) return new Float32Array(d).fill(1);
  if (name === 'embed.tokens') return randomTensor(name, config.vocabSize * d, 0.5);
  const m = /^layers\.\d+\.(.+)\.weight$/.exec(name);
  if (m) {
    const [n, k] = linearShape(config, m[1]);
    return randomTensor(name, n * k, 0.04);
  }
  return null;
};

const { device, report } = await nodeDevice();
const params = config.numLayers * blockLinears(config).reduce((sum, l) => sum + linearShape(config, l).reduce((a, b) => a * b, 1), 0);
console.log(`device: ${[report.vendor, report.architecture, report.description].filter(Boolean).join(' / ')}`);
console.log(`model: ${config.numLayers} blocks, hidden ${config.hiddenSize}, heads ${config.numHeads}/${config.numKvHeads}, intermediate ${config.intermediateSize}: ${(params / 1e9).toFixed(3)} B parameters in block linears`);
console.log(`scheme: W${scheme.bits} g${scheme.groupSize} asym; calibration ${calibration.samples} × ${calibration.length} tokens`);
let seed = 12345;
const calibrationTokens = Array.from({ length: calibration.samples * calibration.length + 1 }, () => {
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed % config.vocabSize;
});
const results: Record<string, unknown>[] = [];
for (const method of methods) {
  const t0 = performance.now();
  let last = 0;
  const onProgress = (p: { item?: string }) => {
    const now = performance.now();
    if (now - last > 5000) {
      last = now;
      process.stderr.write(`  ${method} ${((now - t0) / 1000).toFixed(1)} s: ${p.item ?? ''}\n`);
    }
  };
  let seconds: Record<string, number>;
  if (method === 'hqq') {
    const prepared = await hqq.prepare({ config, read, params: scheme, onProgress });
    for (let i = 0; i < config.numLayers; i++) {
      for (const l of blockLinears(config)) {
        const [n, k] = linearShape(config, l);
        prepared.quantize(`layers.${i}.${l}`, (await read(`layers.${i}.${l}.weight`))!, n, k);
      }
    }
    seconds = (prepared.report as { seconds: Record<string, number> }).seconds;
  } else {
    const prepare = method === 'awq' ? awq.prepare : method === 'gptq' ? gptq.prepare : null;
    if (!prepare) throw new Error(`unknown method "${method}": awq, gptq or hqq`);
    const prepared = await prepare({ config, read, device, calibrationTokens, params: { ...scheme, calibration }, onProgress });
    seconds = (prepared.report as { seconds: Record<string, number> }).seconds;
  }
  const total = (performance.now() - t0) / 1000;
  console.log(`${method}: ${total.toFixed(1)} s in all; ${Object.entries(seconds).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ')}`);
  results.push({ method, seconds: total, stages: seconds });
}
if (out) {
  writeFileSync(out, JSON.stringify({ device: report, config, scheme, calibration, parameters: params, results }, null, 1));
  console.log(`wrote ${out}`);
}
device.destroy();
