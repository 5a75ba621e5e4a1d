/**
 * Where downloaded model files are kept between visits: one folder per
 * repository and revision, each file beside a `.complete` marker once it was
 * downloaded whole and checked. A file without its marker is a partial
 * download, resumed from its last byte.
 *
 * Two stores behind one interface: the browser's Origin Private File System
 * (opfsCache, in the worker) and a folder on disk (directoryCache in
 * hub-cache-node.ts, for Node: CLI, tests, benchmarks).
 */

export interface CacheKey {
  repo: string;
  revision: string;
  file: string;
}

export interface CacheFileState {
  bytes: number;
  complete: boolean;
}

export interface CacheEntry extends CacheKey, CacheFileState {}

/** A partial file open for appending; close() keeps what was written. */
export interface CacheWriter {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface HubCache {
  /** where it lives, for messages ("the browser's storage", a folder) */
  readonly description: string;
  stat(key: CacheKey): Promise<CacheFileState | null>;
  /** opens the file for writing from byte `offset` (cutting off what lies beyond) */
  openAt(key: CacheKey, offset: number): Promise<CacheWriter>;
  markComplete(key: CacheKey): Promise<void>;
  remove(key: CacheKey): Promise<void>;
  readRange(key: CacheKey, begin: number, end: number): Promise<Uint8Array>;
  /** every file held, complete or partial */
  list(): Promise<CacheEntry[]>;
  /** removes every file of a repository (and revision, when given), or everything; returns bytes freed */
  clear(filter?: { repo?: string; revision?: string }): Promise<number>;
}

/** Folder names: repo ids and revisions hold "/", which a folder name cannot. */
export const encodeSegment = (s: string): string => encodeURIComponent(s);
export const decodeSegment = (s: string): string => decodeURIComponent(s);
export const COMPLETE_SUFFIX = '.complete';

/** A repository's cached files as totals per revision, for the page's cache list. */
export interface CachedModel {
  repo: string;
  revision: string;
  bytes: number;
  files: number;
  /** every file it has is complete */
  complete: boolean;
}

export function summarizeCache(entries: CacheEntry[]): CachedModel[] {
  const byModel = new Map<string, CachedModel>();
  for (const e of entries) {
    if (e.file === 'qlab-download.json') continue; // the download's own manifest (hub.ts MANIFEST)
    const id = `${e.repo}@${e.revision}`;
    const m = byModel.get(id) ?? { repo: e.repo, revision: e.revision, bytes: 0, files: 0, complete: true };
    m.bytes += e.bytes;
    m.files += 1;
    m.complete &&= e.complete;
    byModel.set(id, m);
  }
  return [...byModel.values()].sort((a, b) => a.repo.localeCompare(b.repo) || a.revision.localeCompare(b.revision));
}

// ------------------------------------------------------------------ OPFS

interface SyncAccessHandle {
  write(buffer: ArrayBufferView, options?: { at?: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}

/**
 * The browser's Origin Private File System under `qlab-hub/`. In a worker,
 * writes go through a synchronous access handle, straight to the file, so a
 * download cut off by a closed tab keeps what arrived.
 */
export function opfsCache(rootName = 'qlab-hub'): HubCache {
  const rootDir = async (): Promise<FileSystemDirectoryHandle> => {
    const storage = (globalThis as unknown as { navigator?: { storage?: { getDirectory?: () => Promise<FileSystemDirectoryHandle> } } }).navigator?.storage;
    if (!storage?.getDirectory) throw new Error("This browser gives the lab no Origin Private File System (navigator.storage.getDirectory): downloaded models cannot be kept; use local files instead.");
    return (await storage.getDirectory()).getDirectoryHandle(rootName, { create: true });
  };
  const folder = async (key: Pick<CacheKey, 'repo' | 'revision'>, create: boolean): Promise<FileSystemDirectoryHandle | null> => {
    try {
      const repo = await (await rootDir()).getDirectoryHandle(encodeSegment(key.repo), { create });
      return await repo.getDirectoryHandle(encodeSegment(key.revision), { create });
    } catch (e) {
      if (!create && (e as DOMException).name === 'NotFoundError') return null;
      throw e;
    }
  };
  const fileHandle = async (key: CacheKey, name: string, create: boolean): Promise<FileSystemFileHandle | null> => {
    const dir = await folder(key, create);
    if (!dir) return null;
    try {
      return await dir.getFileHandle(name, { create });
    } catch (e) {
      if (!create && (e as DOMException).name === 'NotFoundError') return null;
      throw e;
    }
  };
  const entries = async function* (dir: FileSystemDirectoryHandle): AsyncGenerator<[string, FileSystemHandle]> {
    yield* (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries();
  };

  const cache: HubCache = {
    description: "the browser's storage for this site",
    async stat(key) {
      const handle = await fileHandle(key, encodeSegment(key.file), false);
      if (!handle) return null;
      const bytes = (await handle.getFile()).size;
      const complete = (await fileHandle(key, encodeSegment(key.file) + COMPLETE_SUFFIX, false)) !== null;
      return { bytes, complete };
    },
    async openAt(key, offset) {
      const handle = (await fileHandle(key, encodeSegment(key.file), true))!;
      const sync = (handle as unknown as { createSyncAccessHandle?: () => Promise<SyncAccessHandle> }).createSyncAccessHandle;
      if (sync) {
        const access = await sync.call(handle);
        access.truncate(offset);
        let at = offset;
        return {
          async write(chunk) {
            at += access.write(chunk, { at });
          },
          async close() {
            access.flush();
            access.close();
          },
        };
      }
      const writable = await handle.createWritable({ keepExistingData: true });
      await writable.truncate(offset);
      await writable.seek(offset);
      return {
        write: (chunk) => writable.write(chunk as unknown as FileSystemWriteChunkType),
        close: () => writable.close(),
      };
    },
    async markComplete(key) {
      await fileHandle(key, encodeSegment(key.file) + COMPLETE_SUFFIX, true);
    },
    async remove(key) {
      const dir = await folder(key, false);
      if (!dir) return;
      for (const name of [encodeSegment(key.file) + COMPLETE_SUFFIX, encodeSegment(key.file)]) {
        await dir.removeEntry(name).catch(() => {});
      }
    },
    async readRange(key, begin, end) {
      const handle = await fileHandle(key, encodeSegment(key.file), false);
      if (!handle) throw new Error(`${key.repo}@${key.revision}/${key.file} is not in ${cache.description}: download the model again.`);
      return new Uint8Array(await (await handle.getFile()).slice(begin, end).arrayBuffer());
    },
    async list() {
      const out: CacheEntry[] = [];
      for await (const [repoName, repoHandle] of entries(await rootDir())) {
        if (repoHandle.kind !== 'directory') continue;
        for await (const [revName, revHandle] of entries(repoHandle as FileSystemDirectoryHandle)) {
          if (revHandle.kind !== 'directory') continue;
          const names = new Map<string, FileSystemFileHandle>();
          for await (const [name, h] of entries(revHandle as FileSystemDirectoryHandle)) if (h.kind === 'file') names.set(name, h as FileSystemFileHandle);
          for (const [name, h] of names) {
            if (name.endsWith(COMPLETE_SUFFIX)) continue;
            out.push({ repo: decodeSegment(repoName), revision: decodeSegment(revName), file: decodeSegment(name), bytes: (await h.getFile()).size, complete: names.has(name + COMPLETE_SUFFIX) });
          }
        }
      }
      return out;
    },
    async clear(filter = {}) {
      const held = (await cache.list()).filter((e) => (filter.repo === undefined || e.repo === filter.repo) && (filter.revision === undefined || e.revision === filter.revision));
      const freed = held.reduce((s, e) => s + e.bytes, 0);
      const root = await rootDir();
      if (filter.repo === undefined) {
        // names first: removing while iterating a directory may skip entries
        const names: string[] = [];
        for await (const [name] of entries(root)) names.push(name);
        for (const name of names) await root.removeEntry(name, { recursive: true });
      } else {
        const repo = await root.getDirectoryHandle(encodeSegment(filter.repo)).catch(() => null);
        if (repo) {
          if (filter.revision === undefined) await root.removeEntry(encodeSegment(filter.repo), { recursive: true });
          else await repo.removeEntry(encodeSegment(filter.revision), { recursive: true }).catch(() => {});
        }
      }
      return freed;
    },
  };
  return cache;
}
