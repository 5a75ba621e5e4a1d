/** Calibration samples (src/lab/methods/calibration.ts): where they are cut and how large they are by default. */
import { describe, expect, it } from 'vitest';
import { calibrationWindows, defaultCalibration } from '../../src/lab/methods/calibration';
import { readModelConfig } from '../../src/core/families';

describe('calibration samples', () => {
  it('are n windows of L tokens, evenly spaced from the start to the end of the text', () => {
    const tokens = Array.from({ length: 1000 }, (_, i) => i);
    const w = calibrationWindows(tokens, { samples: 4, length: 100 });
    expect(w.map((s) => s[0])).toEqual([0, 300, 600, 900]);
    expect(w.every((s) => s.length === 100 && s[99] === s[0] + 99)).toBe(true);
    expect(calibrationWindows(tokens, { samples: 1, length: 1000 })[0][999]).toBe(999);
    // more samples than fit side by side: they overlap rather than repeat
    const dense = calibrationWindows(tokens, { samples: 20, length: 100 });
    expect(new Set(dense.map((s) => s[0])).size).toBe(20);
  });

  it('refuses what cannot be cut, saying what to change', () => {
    expect(() => calibrationWindows([1, 2, 3], { samples: 2, length: 8 })).toThrow(/fewer than one sample of 8: choose shorter samples/);
    expect(() => calibrationWindows([1, 2, 3], { samples: 0, length: 2 })).toThrow(/at least 1 sample/);
  });

  it('default to 32 × 256 for the embedded models and 128 × 512 for a 1B model', () => {
    const small = readModelConfig({ model_type: 'llama', vocab_size: 4096, hidden_size: 256, intermediate_size: 768, num_hidden_layers: 6, num_attention_heads: 8, num_key_value_heads: 2, max_position_embeddings: 512 }, 'config.json').config;
    expect(defaultCalibration(small)).toEqual({ samples: 32, length: 256 });
    const big = readModelConfig({ model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 131072 }, 'config.json').config;
    expect(defaultCalibration(big)).toEqual({ samples: 128, length: 512 });
  });
});
