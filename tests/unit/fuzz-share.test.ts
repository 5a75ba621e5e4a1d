/**
 * Fuzzing shared links (src/core/share.ts): seeded mutations of real
 * fragments (characters of the base64url text), links whose decoded JSON is
 * mutated structurally and re-encoded (wrong types, unknown methods, huge
 * numbers, values nested thousands deep), and random strings. Decoding never
 * throws: it gives experiments every one of which passes checkSpec, or a
 * message. Random valid sweeps survive encode → decode unchanged.
 */
import { describe, expect, it } from 'vitest';
import type { ExperimentSpec, MethodSpec } from '../../src/core/experiment';
import { checkSpec, decodeExperiments, encodeExperiments, MAX_SHARED_EXPERIMENTS } from '../../src/core/share';
import { fuzz, jsonText, mutateJson, mutateText, random, randomJson, type Random } from './support/fuzz';

function randomSpec(r: Random): ExperimentSpec {
  const method: MethodSpec = r.chance(0.2)
    ? { id: 'none' }
    : { id: 'rtn', bits: r.pick([2, 3, 4, 8] as const), groupSize: r.pick([32, 64, 128, 'row'] as const), symmetric: r.chance(0.5), ...(r.chance(0.3) ? { quantizeHead: true } : {}) };
  return {
    model: r.chance(0.7) ? { kind: 'embedded', id: r.pick(['qlab-llama-6m', 'qlab-gpt2-6m']) } : { kind: 'hub', repo: 'HuggingFaceTB/SmolLM2-135M', revision: 'main' },
    method,
    eval: { protocol: r.pick(['gptq', 'llamacpp'] as const), windowLength: r.pick([128, 256, 512]), windows: r.chance(0.5) ? null : 1 + r.int(40) },
  };
}

const toBase64Url = (text: string): string => {
  let binary = '';
  for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};
const fromBase64Url = (s: string): string => new TextDecoder().decode(Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)));

function decode(fragment: string) {
  const out = decodeExperiments(fragment);
  if ('specs' in out) {
    expect(out.specs.length).toBeGreaterThan(0);
    expect(out.specs.length).toBeLessThanOrEqual(MAX_SHARED_EXPERIMENTS);
    for (const spec of out.specs) expect(checkSpec(spec)).toEqual({ value: spec });
  }
  return out;
}
const refusal = (o: ReturnType<typeof decodeExperiments>) => ('error' in o ? o.error : null);

export const SHARE_FUZZ = { text: 3000, json: 3000, random: 2000, roundTrip: 500 };

describe('fuzzing shared links', () => {
  it(`share links: ${SHARE_FUZZ.text} character-mutated links, < 10 s`, { timeout: 10_000 }, async () => {
    const r = random(51);
    const links = Array.from({ length: 20 }, () => encodeExperiments(Array.from({ length: 1 + r.int(6) }, () => randomSpec(r))));
    const stats = await fuzz(SHARE_FUZZ.text, (i) => mutateText(links[i % links.length], r), decode, { refusal });
    expect(stats.refused).toBeGreaterThan(0);
    expect(stats.accepted).toBeGreaterThan(0);
  });

  it(`share links: ${SHARE_FUZZ.json} links with mutated contents, < 10 s`, { timeout: 10_000 }, async () => {
    const r = random(52);
    const stats = await fuzz(
      SHARE_FUZZ.json,
      () => {
        const link = encodeExperiments(Array.from({ length: 1 + r.int(4) }, () => randomSpec(r)));
        const groups = JSON.parse(fromBase64Url(link.slice('#x=v1:'.length)));
        // 5,500 levels fit a link's 16,000 characters, and are still deep enough to overflow a careless message
        return `#x=v1:${toBase64Url(jsonText(mutateJson(groups, r), 5500))}`;
      },
      decode,
      { refusal },
    );
    expect(stats.refused).toBeGreaterThan(SHARE_FUZZ.json / 4);
  });

  it(`share links: ${SHARE_FUZZ.random} random fragments, < 5 s`, { timeout: 5_000 }, async () => {
    const r = random(53);
    const chars = 'x=v1:#&%AZaz09-_+/=\u00e9\u{1F642}';
    await fuzz(
      SHARE_FUZZ.random,
      (i) => (i % 2 ? `#x=v1:${toBase64Url(jsonText(randomJson(r), 5500))}` : Array.from({ length: r.int(200) }, () => chars[r.int(chars.length)]).join('')),
      decode,
      { refusal },
    );
  });

  it(`share links: ${SHARE_FUZZ.roundTrip} random sweeps survive encode → decode`, () => {
    const r = random(54);
    for (let i = 0; i < SHARE_FUZZ.roundTrip; i++) {
      const specs = Array.from({ length: 1 + r.int(12) }, () => randomSpec(r));
      expect(decodeExperiments(encodeExperiments(specs))).toEqual({ specs });
    }
  });
});
