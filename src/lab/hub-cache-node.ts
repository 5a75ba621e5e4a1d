/**
 * The Hub cache as a folder on disk (Node: CLI, tests, benchmarks), laid out
 * as the browser's: <root>/<repo>/<revision>/<file> (+ <file>.complete), with
 * repo and revision URI-encoded.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { COMPLETE_SUFFIX, decodeSegment, encodeSegment, type CacheEntry, type CacheKey, type HubCache } from './hub-cache';

/** $QLAB_HUB_CACHE, else ~/.cache/qlab/hub. */
export function defaultCacheDir(): string {
  return process.env.QLAB_HUB_CACHE || join(homedir(), '.cache', 'qlab', 'hub');
}

export function directoryCache(root = defaultCacheDir()): HubCache {
  const dirOf = (key: Pick<CacheKey, 'repo' | 'revision'>) => join(root, encodeSegment(key.repo), encodeSegment(key.revision));
  const pathOf = (key: CacheKey) => join(dirOf(key), encodeSegment(key.file));
  const sizeOf = async (path: string): Promise<number | null> => {
    try {
      return (await stat(path)).size;
    } catch {
      return null;
    }
  };
  const cache: HubCache = {
    description: `the folder ${root}`,
    async stat(key) {
      const bytes = await sizeOf(pathOf(key));
      if (bytes === null) return null;
      return { bytes, complete: existsSync(pathOf(key) + COMPLETE_SUFFIX) };
    },
    async openAt(key, offset) {
      await mkdir(dirOf(key), { recursive: true });
      const path = pathOf(key);
      if ((await sizeOf(path)) === null) await writeFile(path, new Uint8Array(0));
      await truncate(path, offset);
      const handle = await open(path, 'r+');
      let at = offset;
      return {
        async write(chunk) {
          let done = 0;
          while (done < chunk.length) {
            const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, at + done);
            done += bytesWritten;
          }
          at += chunk.length;
        },
        close: () => handle.close(),
      };
    },
    async markComplete(key) {
      await writeFile(pathOf(key) + COMPLETE_SUFFIX, '');
    },
    async remove(key) {
      await rm(pathOf(key) + COMPLETE_SUFFIX, { force: true });
      await rm(pathOf(key), { force: true });
    },
    async readRange(key, begin, end) {
      const handle = await open(pathOf(key), 'r');
      try {
        const out = new Uint8Array(Math.max(0, end - begin));
        let filled = 0;
        while (filled < out.length) {
          const { bytesRead } = await handle.read(out, filled, out.length - filled, begin + filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return out.subarray(0, filled);
      } finally {
        await handle.close();
      }
    },
    async list() {
      const out: CacheEntry[] = [];
      if (!existsSync(root)) return out;
      for (const repo of await readdir(root)) {
        for (const revision of await readdir(join(root, repo)).catch(() => [] as string[])) {
          const dir = join(root, repo, revision);
          const names = new Set(await readdir(dir).catch(() => [] as string[]));
          for (const name of names) {
            if (name.endsWith(COMPLETE_SUFFIX)) continue;
            out.push({ repo: decodeSegment(repo), revision: decodeSegment(revision), file: decodeSegment(name), bytes: (await sizeOf(join(dir, name))) ?? 0, complete: names.has(name + COMPLETE_SUFFIX) });
          }
        }
      }
      return out;
    },
    async clear(filter = {}) {
      const held = (await cache.list()).filter((e) => (filter.repo === undefined || e.repo === filter.repo) && (filter.revision === undefined || e.revision === filter.revision));
      const target = filter.repo === undefined ? root : filter.revision === undefined ? join(root, encodeSegment(filter.repo)) : dirOf({ repo: filter.repo, revision: filter.revision });
      await rm(target, { recursive: true, force: true });
      return held.reduce((s, e) => s + e.bytes, 0);
    },
  };
  return cache;
}
