/**
 * A long queue as the page's worker runs it: 100 experiments through the real
 * queue (LabQueue), the real runner (BrowserLab: its own WebGPU device from
 * Dawn, WikiText-2 read from public/data as the page fetches it) and the real
 * store (LabStore over a key-value store that copies values as IndexedDB
 * does). The model is a small random-weight Llama (hidden 128, 2 blocks, the
 * embedded tokenizer) served as an embedded model: what is under test is the
 * queue, the store and the release of GPU memory, and on SwiftShader a run of
 * the 6M-parameter embedded model takes about 2 s here (loaded twice, with
 * its f32 KL reference): 100 of them would add minutes to CI.
 *
 * Three times, while a run is in flight, the page "reloads": the old session
 * can write nothing more (its store handle is closed, as a closed tab's is),
 * its worker stops, and a new session (new runner, new GPU device, new queue)
 * reads the store back and is told to run the queue again.
 *
 * Checked: every one of the 100 experiments ends up exactly once in the saved
 * results (done, or interrupted by a reload with its progress), no result
 * twice, nothing lost; after every run the ledger holds 0 bytes and the
 * device's live buffers are back to the session's baseline (leaks would grow
 * it run after run).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { create, globals } from 'webgpu';
import { describe, expect, it } from 'vitest';
import type { ExperimentSpec, Result } from '../../src/core/experiment';
import { BrowserLab } from '../../src/lab/browser-run';
import { LabQueue } from '../../src/lab/queue';
import { LabStore, memoryKeyValue, STORE_KEY, type KeyValueStore } from '../../src/lab/store';
import { tinyConfig, tinyModelFiles } from '../helpers/tiny-models';

const RUNS = 100;
const RELOAD_AT = [25, 50, 75];
const siteRoot = new URL('../../public/', import.meta.url);
const MODEL = 'qlab-long-queue-tiny';
const modelFiles = tinyModelFiles('llama', {
  dtype: 'F16',
  config: { ...tinyConfig('llama'), hidden_size: 128, intermediate_size: 256, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32 },
});
const modelRoot = new URL(`models/${MODEL}/`, siteRoot).href;

/**
 * fetch for file: URLs under public/ as a static server answers (what the
 * page's server sends): HEAD, Range requests (206 with Content-Range), the
 * tiny model's files from memory, 404 for what is not there.
 */
const fileFetch: typeof fetch = async (input, init) => {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  let file: Uint8Array;
  try {
    const inMemory = url.href.startsWith(modelRoot) ? modelFiles[url.href.slice(modelRoot.length)] : undefined;
    if (url.href.startsWith(modelRoot) && !inMemory) throw new Error('no such file');
    file = inMemory ?? (await readFile(fileURLToPath(url)));
  } catch {
    return new Response(null, { status: 404, statusText: 'Not Found' });
  }
  const size = file.byteLength;
  if ((init?.method ?? 'GET') === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(size) } });
  const range = /^bytes=(\d+)-(\d*)$/.exec(new Headers(init?.headers).get('range') ?? '');
  const begin = range ? Number(range[1]) : 0;
  const end = range ? Math.min(size, range[2] ? Number(range[2]) + 1 : size) : size;
  const body = new Uint8Array(end - begin);
  body.set(file.subarray(begin, end));
  const headers: Record<string, string> = { 'content-length': String(body.byteLength) };
  if (range) headers['content-range'] = `bytes ${begin}-${end - 1}/${size}`;
  return new Response(body, { status: range ? 206 : 200, headers });
};

/** A handle on the shared store that a closed page can no longer write through. */
function pageHandle(kv: KeyValueStore): KeyValueStore & { close(): void } {
  let open = true;
  return {
    get: (key) => kv.get(key),
    set: (key, value) => (open ? kv.set(key, value) : Promise.resolve()),
    close: () => void (open = false),
  };
}

/** 100 distinct experiments: RTN schemes and options × window lengths, one window each. */
function experiments(): ExperimentSpec[] {
  const specs: ExperimentSpec[] = [];
  for (const windowLength of [16, 24])
    for (const bits of [8, 4, 3, 2] as const)
      for (const groupSize of [32, 64, 128, 'row'] as const)
        for (const symmetric of [false, true])
          for (const quantizeHead of [false, true]) {
            specs.push({ model: { kind: 'embedded', id: MODEL }, method: { id: 'rtn', bits, groupSize, symmetric, quantizeHead }, eval: { protocol: 'gptq', windowLength, windows: 1 } });
          }
  return specs.slice(0, RUNS);
}

const key = (spec: ExperimentSpec) => JSON.stringify(spec);

describe('a long queue with reloads', () => {
  it(`runs ${RUNS} queued experiments through ${RELOAD_AT.length} reloads: each result kept exactly once, ledger and buffers back to baseline after every run`, { timeout: 900_000 }, async () => {
    Object.assign(globalThis, globals);
    const gpu = create([]);
    (globalThis as unknown as { __qlabLongQueueDawn: unknown }).__qlabLongQueueDawn = gpu;
    const saved = memoryKeyValue();
    const specs = experiments();
    expect(new Set(specs.map(key)).size).toBe(RUNS);

    const afterRun: { session: number; ledger: number; buffers: number; bytes: number }[] = [];
    const baselines: { buffers: number; bytes: number }[] = [];
    let started = 0;
    const t0 = performance.now();
    for (let session = 0; session <= RELOAD_AT.length; session++) {
      const handle = pageHandle(saved);
      const lab = new BrowserLab({ gpu, siteRoot, fetch: fileFetch, decodeSteps: 2 });
      const queue = new LabQueue(lab, new LabStore(handle));
      const { state } = await queue.restore();
      if (session === 0) await queue.enqueue(specs);
      else expect(state.queue.every((q) => !q.running)).toBe(true); // the run cut off came back as a result

      const reloadAt = RELOAD_AT[session];
      let reload!: () => void;
      const reloaded = new Promise<'reload'>((resolve) => (reload = () => resolve('reload')));
      queue.subscribe((e) => {
        if (e.type === 'run-start') started++;
        // mid-run: the model is loaded and quantized, evaluation has begun
        if (e.type === 'progress' && started === reloadAt && e.progress.stage === 'evaluate') reload();
        if (e.type === 'run-end') {
          const m = lab.memory();
          const now = { session, ledger: m.ledger?.currentTotal ?? 0, buffers: m.liveBuffers, bytes: m.liveBytes };
          afterRun.push(now);
          if (baselines.length === session) baselines.push({ buffers: now.buffers, bytes: now.bytes });
        }
      });
      const ended = await Promise.race([queue.start().then(() => 'drained' as const), reloaded]);
      if (ended === 'reload') {
        // the tab goes a moment later (the progress write in flight lands first):
        // nothing more reaches the store, the worker's run stops
        await new Promise((resolve) => setTimeout(resolve, 20));
        handle.close();
        await queue.cancelQueue();
        await queue.idle();
        lab.loseDevice();
      } else {
        expect(session).toBe(RELOAD_AT.length);
      }
    }
    const seconds = (performance.now() - t0) / 1000;

    // what a fresh page reads back
    const final = await new LabQueue(new BrowserLab({ gpu, siteRoot, fetch: fileFetch }), new LabStore(saved)).restore();
    const results: Result[] = final.state.results;
    const byStatus = (s: string) => results.filter((r) => r.status === s);
    console.log(
      `long queue: ${RUNS} experiments, ${RELOAD_AT.length} reloads, ${started} runs started in ${seconds.toFixed(0)} s; ` +
        `saved: ${results.length} results (${byStatus('done').length} done, ${byStatus('interrupted').length} interrupted), ${final.state.queue.length} waiting; ` +
        `after each of ${afterRun.length} runs: ledger max ${Math.max(...afterRun.map((a) => a.ledger))} B, live buffers ${[...new Set(afterRun.map((a) => a.buffers))].join('/')}`,
    );
    expect(final.state.queue).toEqual([]);
    expect(results).toHaveLength(RUNS);
    expect(new Set(results.map((r) => r.id)).size).toBe(RUNS);
    // each experiment exactly once
    expect(results.map((r) => key(r.spec)).sort()).toEqual(specs.map(key).sort());
    expect(byStatus('interrupted')).toHaveLength(RELOAD_AT.length);
    for (const r of byStatus('interrupted')) expect(['evaluate', 'speed']).toContain(r.partial?.stage);
    for (const r of byStatus('done')) expect(Number.isFinite(r.metrics?.perplexity)).toBe(true);
    expect(byStatus('done')).toHaveLength(RUNS - RELOAD_AT.length);
    // no leak: every run gives back all it allocated
    expect(afterRun.length).toBeGreaterThanOrEqual(RUNS - RELOAD_AT.length);
    for (const a of afterRun) {
      expect(a.ledger).toBe(0);
      expect({ buffers: a.buffers, bytes: a.bytes }).toEqual(baselines[a.session]);
    }
    expect(await saved.get(STORE_KEY)).toBeTruthy();
  });
});
