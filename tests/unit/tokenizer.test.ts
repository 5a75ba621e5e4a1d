import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { encode as encodeR50k } from 'gpt-tokenizer/encoding/r50k_base';
import { loadTokenizer } from '../../src/core/tokenizer';
import { WIKITEXT2_TEST } from '../../src/core/wikitext';
import { gpt2TokenizerJson } from './support/gpt2-tokenizer-json';
import { tinyTokenizerFiles } from './support/tiny-models';

const wikitext = (): string => readFileSync('public/data/wikitext-2-raw-v1/test.txt', 'utf8');

describe('hand-made byte-level BPE', () => {
  const files = tinyTokenizerFiles();
  const tokenizer = loadTokenizer(files['tokenizer.json'] as string, files['tokenizer_config.json'] as string);

  test('applies merges in rank order, adds no special tokens', () => {
    // the → t|he ; Ġcat → bytes ; Ġin → Ġ|in ; Ġthe → Ġt|h|e → Ġt|he → Ġthe ; Ġhat → bytes
    expect(tokenizer.encode('the cat in the hat')).toEqual([116, 257, 32, 99, 97, 116, 32, 259, 258, 32, 104, 97, 116]);
    expect(tokenizer.decode(tokenizer.encode('the cat in the hat'))).toBe('the cat in the hat');
  });

  test('bytes of non-ASCII text and round trip', () => {
    expect(tokenizer.encode('é')).toEqual([0xc3, 0xa9]);
    const text = 'naïve café — 日本\n\n the end';
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
  });

  test('special tokens and vocabulary size from the files', () => {
    expect(tokenizer.bosTokenId).toBe(261);
    expect(tokenizer.eosTokenId).toBe(262);
    expect(tokenizer.vocabSize).toBe(263);
    expect(tokenizer.addsBosToken).toBe(true);
  });

  test('without tokenizer_config.json, BOS/EOS come from config.json', () => {
    const t = loadTokenizer(files['tokenizer.json'] as string, null, { bosTokenId: 261, eosTokenId: 262 });
    expect([t.bosTokenId, t.eosTokenId, t.addsBosToken]).toEqual([261, 262, true]);
    expect(loadTokenizer(files['tokenizer.json'] as string).bosTokenId).toBeNull();
  });

  test('errors name the file', () => {
    expect(() => loadTokenizer('<!DOCTYPE html>')).toThrow(/tokenizer\.json is not valid JSON \(it looks like an HTML page/);
    expect(() => loadTokenizer('{"version": "1.0"}')).toThrow(/tokenizer\.json has no "model" section/);
    expect(() => loadTokenizer(files['tokenizer.json'] as string, '{"bos_token": "<bos>"}')).toThrow(
      'tokenizer_config.json: bos_token "<bos>" is not a token of tokenizer.json.',
    );
  });
});

describe('GPT-2 tokenizer.json through @huggingface/tokenizers', () => {
  test(`WikiText-2 test tokenizes to ${WIKITEXT2_TEST.gpt2Tokens.toLocaleString('en-US')} tokens, the same ids as r50k_base`, () => {
    const tokenizer = loadTokenizer(JSON.stringify(gpt2TokenizerJson()), JSON.stringify({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' }));
    expect([tokenizer.vocabSize, tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.addsBosToken]).toEqual([50257, 50256, 50256, false]);
    expect(tokenizer.encode('Hello world')).toEqual([15496, 995]);
    const text = wikitext();
    const ids = tokenizer.encode(text);
    expect(ids.length).toBe(WIKITEXT2_TEST.gpt2Tokens);
    expect(ids).toEqual(encodeR50k(text));
  }, 60_000);
});
