/**
 * Activation statistics for MixLLM, SmoothQuant and Atom, taken with the
 * calibration infrastructure of ./calibration.ts (the same samples of
 * public/data/calibration.txt, the same block-by-block GPU pass): for each
 * block and each input site (q/k/v, o, gate/up, down) the input rows of every
 * sample are gathered on the GPU (CalibrationRun.collect), read back and
 * reduced per input channel to max |x|, mean x² and mean |x|. The blocks stay
 * in f32 (these methods take their statistics from the float model).
 */
import type { DecoderConfig } from '../../core/decoder';
import type { LinearSite } from '../../gpu/model';
import { readF32 } from '../../gpu/readback';
import { CalibrationRun, defaultCalibration, type CalibrationParams } from './calibration';
import type { MethodInput } from './method';

export interface ChannelStats {
  /** input features */
  k: number;
  /** per input channel over the calibration tokens */
  maxAbs: Float32Array;
  meanSq: Float32Array;
  meanAbs: Float32Array;
}

export interface ActivationStats {
  /** "layers.3.attn-in" → the statistics of that input */
  sites: Map<string, ChannelStats>;
  tokens: number;
  calibration: CalibrationParams;
  seconds: number;
}

/** The input site a canonical linear ("layers.3.mlp.up") reads: key into ActivationStats.sites. */
export function siteOf(name: string): string {
  const m = /^layers\.(\d+)\.(attn\.[qkvo]|mlp\.(gate|up|down))$/.exec(name);
  if (!m) throw new Error(`"${name}" is not a block linear`);
  const l = m[2];
  const site: LinearSite = l === 'attn.o' ? 'o-in' : l === 'mlp.down' ? 'down-in' : l.startsWith('attn.') ? 'attn-in' : 'mlp-in';
  return `layers.${m[1]}.${site}`;
}

/** Rows gathered per site at most (about 64 MB of f32 for K = 4096). */
const MAX_ROWS = 4096;

export async function collectActivationStats(
  input: Pick<MethodInput<unknown>, 'config' | 'read' | 'device' | 'calibrationTokens' | 'signal' | 'onProgress'>,
  calibration: CalibrationParams | undefined,
): Promise<ActivationStats> {
  const c: DecoderConfig = input.config;
  if (!input.device) throw new Error('activation statistics are collected on the GPU: the lab has no device to give them');
  const params = calibration ?? defaultCalibration(c);
  const t0 = performance.now();
  const run = await CalibrationRun.open(input.device, c, input.read, input.calibrationTokens, params, input.signal);
  const sites = new Map<string, ChannelStats>();
  const all: LinearSite[] = ['attn-in', 'o-in', 'mlp-in', 'down-in'];
  try {
    for (let i = 0; i < c.numLayers; i++) {
      input.signal?.throwIfAborted();
      const captured = await run.collect(i, all, Math.min(MAX_ROWS, run.tokens));
      for (const [site, cap] of captured) {
        const x = await readF32(input.device, cap.x, cap.rows * cap.k);
        run.ledger.release(cap.x);
        const maxAbs = new Float32Array(cap.k);
        const sumSq = new Float64Array(cap.k);
        for (let r = 0; r < cap.rows; r++) {
          for (let j = 0; j < cap.k; j++) {
            const v = x[r * cap.k + j];
            const a = Math.abs(v);
            if (a > maxAbs[j]) maxAbs[j] = a;
            sumSq[j] += v * v;
          }
        }
        sites.set(`layers.${i}.${site}`, { k: cap.k, maxAbs, meanSq: Float32Array.from(sumSq, (v) => v / cap.rows), meanAbs: cap.actMean });
      }
      await run.advance(i);
      input.onProgress?.({ stage: 'calibrate', done: i + 1, total: c.numLayers, item: `layers.${i}` });
    }
    return { sites, tokens: run.tokens, calibration: params, seconds: (performance.now() - t0) / 1000 };
  } finally {
    run.destroy();
  }
}
