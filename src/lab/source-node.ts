/**
 * A model folder on the local disk as a ModelSource (Node only: tests, CLI).
 * Kept apart from load.ts so the browser bundle never sees node:fs.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ModelSource } from './load';

export function directorySource(dir: string, name = basename(dir)): ModelSource {
  const full = (path: string): string => join(dir, path);
  return {
    name,
    async exists(path) {
      try {
        return (await stat(full(path))).isFile();
      } catch {
        return false;
      }
    },
    size: async (path) => (await stat(full(path))).size,
    readText: (path) => readFile(full(path), 'utf8'),
    async readRange(path, begin, end) {
      const handle = await open(full(path), 'r');
      try {
        const out = new Uint8Array(Math.max(0, end - begin));
        let filled = 0;
        while (filled < out.length) {
          const { bytesRead } = await handle.read(out, filled, out.length - filled, begin + filled);
          if (bytesRead === 0) break; // end of file: the caller reports the short read
          filled += bytesRead;
        }
        return out.subarray(0, filled);
      } finally {
        await handle.close();
      }
    },
  };
}
