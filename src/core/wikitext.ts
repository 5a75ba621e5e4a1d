/**
 * WikiText-2 raw test split, the evaluation text (public/data/wikitext-2-raw-v1,
 * CC BY-SA 3.0 / GFDL, Merity et al. 2016). Its identity is checked before any
 * perplexity is reported: a different text would make every number
 * incomparable with published ones.
 */

export const WIKITEXT2_TEST = {
  /** path under the site root (Vite's public/) */
  path: 'data/wikitext-2-raw-v1/test.txt',
  bytes: 1_296_370,
  characters: 1_294_336,
  sha256: '696cca6b65a171b0a358a4be6732cdfdf2dd6164a32e20fd70e3c13fc4dfae83',
  /** tokens under GPT-2's BPE (r50k_base), the figure of the HF perplexity guide */
  gpt2Tokens: 287_644,
} as const;

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The text of the test split after checking its size and SHA-256; errors say what to do. */
export async function verifyWikitext2Test(bytes: Uint8Array, source = WIKITEXT2_TEST.path): Promise<string> {
  if (bytes.length !== WIKITEXT2_TEST.bytes) {
    throw new Error(
      `${source} is ${bytes.length.toLocaleString('en-US')} bytes, the WikiText-2 test split is ${WIKITEXT2_TEST.bytes.toLocaleString('en-US')}: ` +
        `the file is cut off or not the evaluation text (a server that rewrites line endings or an HTML error page does this) — reload the page or restore the file.`,
    );
  }
  const hash = await sha256Hex(bytes);
  if (hash !== WIKITEXT2_TEST.sha256) {
    throw new Error(`${source} has SHA-256 ${hash}, not the WikiText-2 test split's ${WIKITEXT2_TEST.sha256}: the text was altered — restore it from shared/data.`);
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}
