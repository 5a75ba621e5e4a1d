import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { encode as encodeR50k } from 'gpt-tokenizer/encoding/r50k_base';
import { sha256Hex, verifyWikitext2Test, WIKITEXT2_TEST } from '../../src/core/wikitext';

const bytes = (): Uint8Array => new Uint8Array(readFileSync('public/data/wikitext-2-raw-v1/test.txt'));

describe('public/data/wikitext-2-raw-v1/test.txt', () => {
  test('has the published SHA-256 and size', async () => {
    const b = bytes();
    expect(b.length).toBe(1_296_370);
    expect(await sha256Hex(b)).toBe('696cca6b65a171b0a358a4be6732cdfdf2dd6164a32e20fd70e3c13fc4dfae83');
    const text = await verifyWikitext2Test(b);
    expect(text.length).toBe(WIKITEXT2_TEST.characters);
  });

  test('GPT-2 BPE (r50k_base) gives exactly 287,644 tokens: the data is authentic', () => {
    expect(encodeR50k(readFileSync('public/data/wikitext-2-raw-v1/test.txt', 'utf8')).length).toBe(287_644);
  });

  test('ships its attribution', () => {
    const readme = readFileSync('public/data/wikitext-2-raw-v1/README.md', 'utf8');
    expect(readme).toMatch(/CC BY-SA 3\.0/);
    expect(readme).toMatch(/GFDL/);
    expect(readme).toMatch(/Merity et al\./);
  });

  test('a cut-off or altered file is refused with what to do', async () => {
    const b = bytes();
    await expect(verifyWikitext2Test(b.subarray(0, 1000))).rejects.toThrow(/is 1,000 bytes, the WikiText-2 test split is 1,296,370: the file is cut off/);
    const altered = b.slice();
    altered[500] ^= 1;
    await expect(verifyWikitext2Test(altered)).rejects.toThrow(/has SHA-256 [0-9a-f]{64}, not the WikiText-2 test split's .*restore it/);
  });
});
