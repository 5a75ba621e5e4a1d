/**
 * Seeded fuzzing for the parsers that read outside data: byte mutations of a
 * valid file, structural mutations of valid JSON, random inputs, and the
 * check every parser must pass on each input — return, or throw a plain
 * Error with a sentence for a person; never a TypeError/RangeError from deep
 * inside (a crash), never a hang (each input timed).
 */
import { expect } from 'vitest';
import { rng } from '../../helpers/random';

export interface Random {
  next(): number;
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

export function random(seed: number): Random {
  const next = rng(seed);
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (items) => items[Math.floor(next() * items.length)],
    chance: (p) => next() < p,
  };
}

const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x22, 0x5b, 0x5d, 0x7b, 0x7d, 0x3a, 0x2c, 0x30, 0x39, 0x2d, 0x20, 0x5c, 0xc0, 0xed];

/** One to four byte-level mutations of `input` (a copy). */
export function mutateBytes(input: Uint8Array, r: Random): Uint8Array {
  let out = input.slice();
  const steps = 1 + r.int(4);
  for (let s = 0; s < steps; s++) {
    const at = out.length ? r.int(out.length) : 0;
    switch (r.int(8)) {
      case 0: // flip one bit
        if (out.length) out[at] ^= 1 << r.int(8);
        break;
      case 1: // an interesting byte
        if (out.length) out[at] = r.pick(INTERESTING_BYTES);
        break;
      case 2: // a random byte
        if (out.length) out[at] = r.int(256);
        break;
      case 3: {
        // truncate
        out = out.slice(0, r.int(out.length + 1));
        break;
      }
      case 4: {
        // delete a range
        const n = 1 + r.int(16);
        out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + n)]);
        break;
      }
      case 5: {
        // insert random bytes
        const bytes = Array.from({ length: 1 + r.int(8) }, () => (r.chance(0.5) ? r.pick(INTERESTING_BYTES) : r.int(256)));
        out = Uint8Array.from([...out.subarray(0, at), ...bytes, ...out.subarray(at)]);
        break;
      }
      case 6: {
        // duplicate a range in place
        const n = 1 + r.int(32);
        out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at, at + n), ...out.subarray(at)]);
        break;
      }
      default: {
        // overwrite with an ASCII digit run (numbers in JSON grow or change)
        const digits = new TextEncoder().encode(String(r.pick([0, 1, 7, 255, 65536, 2 ** 31, 2 ** 32, 2 ** 53, 1e12, 1e300])));
        out.set(digits.subarray(0, Math.max(0, out.length - at)), at);
      }
    }
  }
  return out;
}

export function mutateText(text: string, r: Random): string {
  const bytes = mutateBytes(new TextEncoder().encode(text), r);
  return new TextDecoder().decode(bytes); // invalid UTF-8 becomes U+FFFD, as a browser's text() would
}

/** Values that break careless readers: wrong types, huge and negative numbers, deep nesting, long strings. */
export function interestingValue(r: Random): unknown {
  const values: (() => unknown)[] = [
    () => null,
    () => true,
    () => false,
    () => 0,
    () => -1,
    () => 1.5,
    () => 1e12,
    () => -1e12,
    () => 2 ** 53,
    () => 2 ** 31,
    () => 1e308,
    () => 5e-324,
    () => '',
    () => 'x'.repeat(1 + r.int(300)),
    () => '<img src=x onerror=alert(1)>',
    () => '__proto__',
    () => '1e12',
    () => [],
    () => [1, 2],
    () => [1e12, 1e12],
    () => [-1, 5],
    () => ({}),
    () => ({ __proto__: { polluted: true } }),
    () => DEEP, // becomes a list nested thousands deep in the text (jsonText)
    () => Array.from({ length: 1 + r.int(20) }, () => r.int(1000)),
  ];
  return r.pick(values)();
}

type Json = unknown;

/**
 * Stands for a value nested thousands of levels deep: JSON.parse reads such
 * text, but JSON.stringify, String() and template literals of the result
 * overflow the stack, so a parser that echoes a value in a message can crash.
 * Kept as a marker in trees (structuredClone would overflow too) and expanded by jsonText.
 */
export const DEEP = '\u0000deep\u0000';
/** JSON text of a mutated tree, with each DEEP marker expanded to `levels` nested lists. */
export function jsonText(value: Json, levels = 9000): string {
  const text = JSON.stringify(value) ?? 'null';
  const marker = JSON.stringify(DEEP);
  return text.split(marker).join('['.repeat(levels) + '1' + ']'.repeat(levels));
}

/** The paths (lists of keys) of every value in a JSON tree, up to `limit`. */
function paths(value: Json, limit = 400): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (v: Json, path: (string | number)[]) => {
    if (out.length >= limit) return;
    out.push(path);
    if (Array.isArray(v)) v.slice(0, 20).forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(value, []);
  return out;
}

/** One to three structural mutations of a JSON value (a deep copy): replace, delete or add at a random path. */
export function mutateJson(value: Json, r: Random): Json {
  let root = structuredClone(value);
  const steps = 1 + r.int(3);
  for (let s = 0; s < steps; s++) {
    const all = paths(root);
    const path = r.pick(all);
    if (path.length === 0) {
      if (r.chance(0.1)) root = interestingValue(r);
      continue;
    }
    const parent = path.slice(0, -1).reduce<Json>((v, k) => (v as Record<string | number, Json>)[k], root) as Record<string | number, Json> | Json[];
    const key = path[path.length - 1];
    const op = r.int(10);
    if (op < 6) (parent as Record<string | number, Json>)[key] = interestingValue(r);
    else if (op < 8) {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete (parent as Record<string, Json>)[key as string];
    } else if (op < 9 && Array.isArray(parent)) parent.push(interestingValue(r));
    else if (!Array.isArray(parent)) (parent as Record<string, Json>)[r.pick(['__proto__', 'constructor', 'extra', String(key) + '_'])] = interestingValue(r);
    else (parent as Json[])[key as number] = structuredClone(parent[r.int(parent.length)]);
  }
  return root;
}

/** A random JSON value of bounded size. */
export function randomJson(r: Random, depth = 0): Json {
  const kind = r.int(depth > 3 ? 4 : 6);
  switch (kind) {
    case 0:
      return interestingValue(r);
    case 1:
      return r.next() * 1e6 - 5e5;
    case 2:
      return r.pick(['', 'llama', 'gpt2', 'F32', 'BF16', 'weight', 'model.safetensors']);
    case 3:
      return r.chance(0.5);
    case 4:
      return Array.from({ length: r.int(5) }, () => randomJson(r, depth + 1));
    default: {
      const o: Record<string, Json> = {};
      for (let i = r.int(6); i > 0; i--) o[r.pick(['model_type', 'dtype', 'shape', 'data_offsets', 'weight_map', 'id', 'spec', 'a', 'b'])] = randomJson(r, depth + 1);
      return o;
    }
  }
}

export function randomBytes(r: Random, max: number): Uint8Array {
  return Uint8Array.from({ length: r.int(max) }, () => r.int(256));
}

const ENGINE_ERRORS: ErrorConstructor[] = [TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError];

export interface FuzzStats {
  inputs: number;
  accepted: number;
  refused: number;
  /** slowest single input, ms */
  slowestMs: number;
  /** distinct refusal messages seen (first words), for the report */
  messages: Set<string>;
}

/**
 * Runs `parse` on `count` inputs from `make`, checking each one: a refusal is
 * a plain Error (not TypeError/RangeError/SyntaxError…) with a message of a
 * sentence that names something; no input takes more than `perInputMs`.
 * `check` looks at what an accepted input produced.
 */
export async function fuzz<I, O>(
  count: number,
  make: (i: number) => I,
  parse: (input: I) => O | Promise<O>,
  options: { perInputMs?: number; check?: (output: O, input: I) => void; refusal?: (output: O) => string | null } = {},
): Promise<FuzzStats> {
  const stats: FuzzStats = { inputs: 0, accepted: 0, refused: 0, slowestMs: 0, messages: new Set() };
  const perInputMs = options.perInputMs ?? 1000;
  for (let i = 0; i < count; i++) {
    const input = make(i);
    const t = performance.now();
    let output: O | undefined;
    let failure: unknown = null;
    try {
      output = await parse(input);
    } catch (e) {
      failure = e;
    }
    const ms = performance.now() - t;
    stats.slowestMs = Math.max(stats.slowestMs, ms);
    stats.inputs++;
    const show = () => (typeof input === 'string' ? input.slice(0, 300) : input instanceof Uint8Array ? `${input.length} bytes: ${new TextDecoder().decode(input.subarray(0, 300))}` : JSON.stringify(input)?.slice(0, 300));
    if (ms > perInputMs) expect.fail(`input ${i} took ${ms.toFixed(0)} ms (limit ${perInputMs}): ${show()}`);
    if (failure !== null) {
      // the parser's own Error (or its own subclass, e.g. HubError); never one the engine threw from deep inside
      if (!(failure instanceof Error) || ENGINE_ERRORS.some((E) => failure.constructor === E)) {
        expect.fail(`input ${i} crashed the parser with ${failure instanceof Error ? `${failure.constructor.name}: ${failure.message}` : String(failure)}\n${show()}\n${failure instanceof Error ? failure.stack : ''}`);
      }
      checkMessage(failure.message, i, show);
      stats.refused++;
      stats.messages.add(failure.message.slice(0, 60));
      continue;
    }
    const refused = options.refusal?.(output as O) ?? null;
    if (refused !== null) {
      checkMessage(refused, i, show);
      stats.refused++;
      stats.messages.add(refused.slice(0, 60));
      continue;
    }
    stats.accepted++;
    options.check?.(output as O, input);
  }
  return stats;
}

function checkMessage(message: string, i: number, show: () => string | undefined): void {
  // a sentence, not "undefined" or "bad"; and never a raw engine message alone
  // a library's own words may follow in parentheses, after a sentence of ours
  const ours = message.replace(/\([^]*\)/g, '');
  if (message.length < 20 || /^(undefined|null|\[object Object\])/.test(message) || /Cannot read propert|is not a function|is not iterable|Maximum call stack/.test(ours)) {
    expect.fail(`input ${i} was refused without a clear message: ${JSON.stringify(message)}\n${show()}`);
  }
}
