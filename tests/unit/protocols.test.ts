import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { encode as encodeR50k } from 'gpt-tokenizer/encoding/r50k_base';
import { evalWindows, gptqWindow, llamacppWindow, scoredPerWindow, summarizeProtocol, windowCount } from '../../src/core/protocols';

const T = Array.from({ length: 29 }, (_, i) => 100 + i); // 29 tokens: 3 windows of 8 (5 left over)

describe('gptq', () => {
  test('non-overlapping windows of seqlen, every shifted position scored', () => {
    const windows = [...evalWindows('gptq', T, { windowLength: 8 })];
    expect(windows.length).toBe(3);
    const w = windows[1];
    expect(w.index).toBe(1);
    expect(Array.from(w.inputIds)).toEqual([108, 109, 110, 111, 112, 113, 114, 115]);
    expect(Array.from(w.targets)).toEqual([109, 110, 111, 112, 113, 114, 115, -1]);
    expect(w.scored).toBe(7);
    expect(gptqWindow(T, 8, 2).inputIds[7]).toBe(123); // the tail 124… is dropped
  });
});

describe('llamacpp', () => {
  test('BOS replaces each window’s first token; the second half is scored', () => {
    const windows = [...evalWindows('llamacpp', T, { windowLength: 8, bosTokenId: 1 })];
    expect(windows.length).toBe(3);
    const w = windows[2];
    expect(Array.from(w.inputIds)).toEqual([1, 117, 118, 119, 120, 121, 122, 123]);
    // j = 4 … 6 predict input[j + 1]
    expect(Array.from(w.targets)).toEqual([-1, -1, -1, -1, 121, 122, 123, -1]);
    expect(w.scored).toBe(3);
  });

  test('512 context: 255 scored per window, positions 256…510', () => {
    const tokens = Array.from({ length: 1100 }, (_, i) => i);
    const w = llamacppWindow(tokens, 512, 1, 7);
    expect(w.scored).toBe(255);
    expect(w.inputIds[0]).toBe(7);
    expect(w.inputIds[1]).toBe(513);
    const scoredAt = Array.from(w.targets).flatMap((t, j) => (t >= 0 ? [j] : []));
    expect(scoredAt[0]).toBe(256);
    expect(scoredAt.at(-1)).toBe(510);
    expect(w.targets[256]).toBe(512 + 257);
    expect(scoredPerWindow({ name: 'llamacpp', windowLength: 512 })).toBe(255);
  });

  test('without BOS the first token stays (bosTokenId null), but it must be said', () => {
    expect(llamacppWindow(T, 8, 0, null).inputIds[0]).toBe(100);
    expect(() => [...evalWindows('llamacpp', T, { windowLength: 8 })]).toThrow(/bosTokenId must be given/);
  });
});

describe('slices and checks', () => {
  test('a slice is the first n windows', () => {
    expect([...evalWindows('gptq', T, { windowLength: 8, limit: 2 })].map((w) => w.index)).toEqual([0, 1]);
    expect([...evalWindows('gptq', T, { windowLength: 8, limit: 50 })].length).toBe(3);
    expect([...evalWindows('gptq', T.slice(0, 7), { windowLength: 8 })].length).toBe(0);
  });

  test('bad arguments are named', () => {
    expect(() => gptqWindow(T, 8, 3)).toThrow('gptq protocol: window 3 does not exist; 29 tokens make 3 windows of 8.');
    expect(() => gptqWindow(T, 1, 0)).toThrow(/window length 1 is invalid/);
    expect(() => [...evalWindows('gptq', [1, 2, 300, 4], { windowLength: 2, vocabSize: 256 })]).toThrow(
      /token 2 of the evaluation text is 300, outside the model's vocabulary of 256/,
    );
  });

  test('WikiText-2 with GPT-2 tokens: 280 gptq windows of 1024, 561 llamacpp windows of 512', () => {
    const n = encodeR50k(readFileSync('public/data/wikitext-2-raw-v1/test.txt', 'utf8')).length;
    expect(windowCount(n, 1024)).toBe(280);
    expect(summarizeProtocol('gptq', n, 1024)).toEqual({ protocol: 'gptq', windowLength: 1024, windowsTotal: 280, windows: 280, scoredTokens: 280 * 1023, textTokens: 287_644 });
    expect(summarizeProtocol('llamacpp', n, 512, 40)).toEqual({ protocol: 'llamacpp', windowLength: 512, windowsTotal: 561, windows: 40, scoredTokens: 40 * 255, textTokens: 287_644 });
  });
});
