/** Reads the PyTorch reference numbers of an embedded model (tests/fixtures/reference). */
import { readFileSync } from 'node:fs';
import { parseSafetensors } from '../../src/core/safetensors';

export const EMBEDDED = ['qlab-llama-6m', 'qlab-gpt2-6m'] as const;
export const root = new URL('../..', import.meta.url).pathname;

export interface ProtocolReference {
  seqlen: number;
  windows: number;
  tokens_scored: number;
  nll_sum: number;
  ppl: number;
  window_nll: number[];
  window_count: number[];
}

export interface RtnReference {
  bits: 2 | 3 | 4 | 8;
  group: number | 'row' | null;
  gptq: ProtocolReference;
  llamacpp: ProtocolReference;
  probe: { rows: number[]; codes: number[][]; scale_f32_hex: string[][]; zero: number[][]; codes_sum_all_rows: number; dequant_sum_all_rows_f64: number };
}

export interface ModelReference {
  model: string;
  family: string;
  wikitext2_tokens: number;
  first_window_ids: number[];
  gptq: ProtocolReference;
  llamacpp: ProtocolReference;
  unigram: { ppl: number };
  rtn: Record<string, RtnReference>;
}

export function modelReference(name: string): ModelReference {
  return JSON.parse(readFileSync(`${root}tests/fixtures/reference/${name}/reference.json`, 'utf8'));
}

export function firstWindow(name: string): { tensor(n: string): Float32Array } {
  const path = `${root}tests/fixtures/reference/${name}/first_window.safetensors`;
  return parseSafetensors(new Uint8Array(readFileSync(path)), 'first_window.safetensors');
}

export const modelDir = (name: string) => `${root}public/models/${name}`;
export const wikitextText = () => readFileSync(`${root}public/data/wikitext-2-raw-v1/test.txt`, 'utf8');
