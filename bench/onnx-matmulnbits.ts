/**
 * onnxruntime-web's WebGPU MatMulNBits (com.microsoft, 4-bit, block 128) as the
 * browser peer of our GEMV, built and timed in the same process on the same
 * GPUDevice as our kernels.
 *
 * The model is written here, in code: a one-graph ONNX ModelProto encoded with
 * a minimal protobuf writer (only the fields the graph needs). It holds R
 * MatMulNBits nodes that share the input A [M, K] and each read their own
 * weights (R copies, so that a timed kernel streams weights that are not in
 * the L2 cache, as ours do), outputs Y_i [M, N].
 *
 * Timing: onnxruntime-web's own WebGPU profiling (`env.webgpu.profiling`,
 * timestamp queries around each kernel's dispatch), the median over the
 * MatMulNBits kernels of all runs after warm-up — the same kind of number as
 * our per-pass timestamps.
 *
 * Weight layout (the contrib op's): B uint8 [N, K/128, 64], code k of row n at
 * byte k/2, low nibble for even k — the same bytes as our packed 4-bit rows;
 * scales f32 [N · K/128]; zero_points uint8 [N · ⌈(K/128)/2⌉], two 4-bit zero
 * points per byte, low nibble first. y = Σ_k A[m, k] · (q − zero) · scale.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { brotliDecompressSync } from 'node:zlib';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PackedLinear } from '../src/core/quant/format';

// ------------------------------------------------------------- protobuf ----

class Writer {
  private parts: number[] = [];
  private chunks: Uint8Array[] = [];
  private flush(): void {
    if (this.parts.length) {
      this.chunks.push(Uint8Array.from(this.parts));
      this.parts = [];
    }
  }
  varint(v: number | bigint): this {
    let n = BigInt(v);
    if (n < 0n) n += 1n << 64n;
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n) b |= 0x80;
      this.parts.push(b);
    } while (n);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length);
    this.flush();
    this.chunks.push(data);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }
  finish(): Uint8Array {
    this.flush();
    const total = this.chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

const FLOAT = 1;
const UINT8 = 2;

function tensor(name: string, dims: number[], type: number, raw: Uint8Array): Writer {
  const w = new Writer();
  for (const d of dims) w.int(1, d);
  return w.int(2, type).string(8, name).bytes(9, raw);
}

function valueInfo(name: string, type: number, dims: number[]): Writer {
  const shape = new Writer();
  for (const d of dims) shape.message(1, new Writer().int(1, d));
  const tensorType = new Writer().int(1, type).message(2, shape);
  return new Writer().string(1, name).message(2, new Writer().message(1, tensorType));
}

function intAttr(name: string, v: number): Writer {
  return new Writer().string(1, name).int(3, v).int(20, 2); // type INT
}

/** The 4-bit layer in MatMulNBits' layout (see the header). */
export function toMatMulNBits(p: PackedLinear): { b: Uint8Array; scales: Float32Array; zeros: Uint8Array } {
  if (p.bits !== 4 || p.groupSize !== 128 || p.symmetric) throw new Error('MatMulNBits comparison: 4-bit g128 asymmetric layers only');
  const blocks = p.k / 128;
  const rowBytes = p.k / 2;
  const b = new Uint8Array(p.n * rowBytes);
  const codeBytes = new Uint8Array(p.codes.buffer, p.codes.byteOffset, p.codes.byteLength);
  for (let r = 0; r < p.n; r++) b.set(codeBytes.subarray(r * p.wordsPerRow * 4, r * p.wordsPerRow * 4 + rowBytes), r * rowBytes);
  const zpRow = Math.ceil(blocks / 2);
  const zeros = new Uint8Array(p.n * zpRow);
  for (let r = 0; r < p.n; r++) {
    for (let g = 0; g < blocks; g++) zeros[r * zpRow + (g >> 1)] |= (p.zeros![r * blocks + g] & 0xf) << ((g & 1) * 4);
  }
  return { b, scales: p.scales, zeros };
}

/** A ModelProto with `copies` MatMulNBits nodes over the same A, each with its own copy of the weights. */
export function matMulNBitsModel(p: PackedLinear, m: number, copies: number): Uint8Array {
  const { b, scales, zeros } = toMatMulNBits(p);
  const blocks = p.k / 128;
  const graph = new Writer();
  for (let i = 0; i < copies; i++) {
    const node = new Writer()
      .string(1, 'A').string(1, `B${i}`).string(1, `S${i}`).string(1, `Z${i}`)
      .string(2, `Y${i}`)
      .string(3, `mmnb${i}`)
      .string(4, 'MatMulNBits')
      .message(5, intAttr('K', p.k))
      .message(5, intAttr('N', p.n))
      .message(5, intAttr('bits', 4))
      .message(5, intAttr('block_size', 128))
      .string(7, 'com.microsoft');
    graph.message(1, node);
  }
  graph.string(2, 'matmulnbits_bench');
  for (let i = 0; i < copies; i++) {
    graph.message(5, tensor(`B${i}`, [p.n, blocks, 64], UINT8, b));
    graph.message(5, tensor(`S${i}`, [p.n * blocks], FLOAT, new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength)));
    graph.message(5, tensor(`Z${i}`, [zeros.length], UINT8, zeros));
  }
  graph.message(11, valueInfo('A', FLOAT, [m, p.k]));
  for (let i = 0; i < copies; i++) graph.message(12, valueInfo(`Y${i}`, FLOAT, [m, p.n]));
  return new Writer()
    .int(1, 8) // ir_version
    .message(8, new Writer().string(1, '').int(2, 17))
    .message(8, new Writer().string(1, 'com.microsoft').int(2, 1))
    .string(2, 'qlab-bench')
    .message(7, graph)
    .finish();
}

// ------------------------------------------------------------- runtime ----

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ort = any;
let ortModule: Ort | null = null;
const kernelTimes: { name: string; ns: number }[] = [];

/**
 * Loads onnxruntime-web's WebGPU build from `dir` (ort.webgpu.min.mjs, the
 * asyncify .mjs, and the .wasm or its brotli-compressed .wasm.br, which is
 * unpacked to a temporary folder), on our device.
 */
export async function loadOrt(dir: string, device: GPUDevice): Promise<Ort> {
  if (ortModule) return ortModule;
  let from = dir;
  const wasm = 'ort-wasm-simd-threaded.asyncify.wasm';
  if (!existsSync(join(dir, wasm)) && existsSync(join(dir, `${wasm}.br`))) {
    from = '/tmp/qlab-ort-web';
    mkdirSync(from, { recursive: true });
    for (const f of ['ort.webgpu.min.mjs', 'ort-wasm-simd-threaded.asyncify.mjs']) writeFileSync(join(from, f), readFileSync(join(dir, f)));
    writeFileSync(join(from, wasm), brotliDecompressSync(readFileSync(join(dir, `${wasm}.br`))));
  }
  // onnxruntime-web finds WebGPU through navigator.gpu; Dawn's queue.writeBuffer refuses views of a SharedArrayBuffer.
  const g = globalThis as unknown as { navigator?: { gpu?: unknown }; __qlabDawn?: unknown; GPUQueue: { prototype: GPUQueue } };
  if (!g.navigator?.gpu) Object.defineProperty(globalThis, 'navigator', { value: { gpu: g.__qlabDawn }, configurable: true, writable: true });
  const proto = g.GPUQueue.prototype as GPUQueue & { __qlabWrapped?: boolean };
  if (!proto.__qlabWrapped) {
    const original = proto.writeBuffer;
    proto.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, offset: number, data: BufferSource | SharedArrayBuffer, dataOffset?: number, size?: number) {
      const view = data as ArrayBufferView;
      if (ArrayBuffer.isView(view) && typeof SharedArrayBuffer !== 'undefined' && view.buffer instanceof SharedArrayBuffer) {
        const copy = new Uint8Array(view.byteLength);
        copy.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
        const bpe = (view as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
        return original.call(this, buffer, offset, copy, dataOffset !== undefined ? dataOffset * bpe : undefined, size !== undefined ? size * bpe : undefined);
      }
      return original.call(this, buffer, offset, data as BufferSource, dataOffset, size);
    } as GPUQueue['writeBuffer'];
    proto.__qlabWrapped = true;
  }
  const ort: Ort = await import(/* @vite-ignore */ pathToFileURL(join(from, 'ort.webgpu.min.mjs')).href);
  ort.env.wasm.wasmPaths = `${pathToFileURL(from).href}/`;
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  ort.env.webgpu.device = device;
  ort.env.webgpu.profiling = {
    mode: device.features.has('timestamp-query') ? 'default' : 'off',
    ondata: (d: { kernelType: string; programName?: string; startTime: number; endTime: number }) => {
      kernelTimes.push({ name: `${d.kernelType}/${d.programName ?? ''}`, ns: d.endTime - d.startTime });
    },
  };
  ortModule = ort;
  return ort;
}

/**
 * GPU time of onnxruntime-web's compute passes, measured from outside: while
 * active, every compute pass begun gets timestamp writes into a query set of
 * the device its encoder came from. (onnxruntime-web's own profiling hook
 * belongs to its JSEP build; the WebGPU build it ships now is a native EP that
 * requests its own GPUDevice from the same adapter, whatever env.webgpu.device
 * says.) Each pass may hold several dispatches; a run's GPU time is the sum
 * over its passes.
 */
interface DeviceQueries {
  device: GPUDevice;
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  read: GPUBuffer;
  used: number;
}

class PassTimer {
  active = false;
  dispatches = 0;
  private readonly byDevice = new Map<GPUDevice, DeviceQueries>();
  static readonly MAX = 4096;

  constructor() {
    const timer = this;
    const g = globalThis as unknown as {
      GPUDevice: { prototype: GPUDevice };
      GPUCommandEncoder: { prototype: GPUCommandEncoder };
      GPUComputePassEncoder: { prototype: GPUComputePassEncoder };
    };
    const dev = g.GPUDevice.prototype as GPUDevice & { __qlabCreate?: GPUDevice['createCommandEncoder'] };
    const create = dev.__qlabCreate ?? dev.createCommandEncoder;
    dev.__qlabCreate = create;
    dev.createCommandEncoder = function (this: GPUDevice, d?: GPUCommandEncoderDescriptor) {
      const e = create.call(this, d) as GPUCommandEncoder & { __qlabDevice?: GPUDevice };
      e.__qlabDevice = this;
      return e;
    };
    const enc = g.GPUCommandEncoder.prototype as GPUCommandEncoder & { __qlabBegin?: GPUCommandEncoder['beginComputePass']; __qlabDevice?: GPUDevice };
    const begin = enc.__qlabBegin ?? enc.beginComputePass;
    enc.__qlabBegin = begin;
    enc.beginComputePass = function (this: GPUCommandEncoder & { __qlabDevice?: GPUDevice }, descriptor?: GPUComputePassDescriptor) {
      const q = timer.active && this.__qlabDevice ? timer.queries(this.__qlabDevice) : null;
      if (q && q.used + 2 <= PassTimer.MAX && !descriptor?.timestampWrites) {
        const d = { ...(descriptor ?? {}), timestampWrites: { querySet: q.querySet, beginningOfPassWriteIndex: q.used, endOfPassWriteIndex: q.used + 1 } };
        q.used += 2;
        return begin.call(this, d);
      }
      return begin.call(this, descriptor);
    };
    const pass = g.GPUComputePassEncoder.prototype as GPUComputePassEncoder & { __qlabDispatch?: GPUComputePassEncoder['dispatchWorkgroups'] };
    const dispatch = pass.__qlabDispatch ?? pass.dispatchWorkgroups;
    pass.__qlabDispatch = dispatch;
    pass.dispatchWorkgroups = function (this: GPUComputePassEncoder, x: number, y?: number, z?: number) {
      if (timer.active) timer.dispatches++;
      return dispatch.call(this, x, y, z);
    };
  }

  private queries(device: GPUDevice): DeviceQueries | null {
    if (!device.features.has('timestamp-query')) return null;
    let q = this.byDevice.get(device);
    if (!q) {
      q = {
        device,
        querySet: device.createQuerySet({ type: 'timestamp', count: PassTimer.MAX }),
        resolve: device.createBuffer({ size: PassTimer.MAX * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
        read: device.createBuffer({ size: PassTimer.MAX * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
        used: 0,
      };
      this.byDevice.set(device, q);
    }
    return q;
  }

  /** the devices onnxruntime-web encoded on since start (to wait for their queues) */
  devices(): GPUDevice[] {
    return [...this.byDevice.values()].filter((q) => q.used > 0).map((q) => q.device);
  }

  start(): void {
    for (const q of this.byDevice.values()) q.used = 0;
    this.dispatches = 0;
    this.active = true;
  }

  /** Stops recording; the GPU µs summed over the passes since start, and the pass count. */
  async stop(): Promise<{ us: number; passes: number; dispatches: number }> {
    this.active = false;
    let ns = 0;
    let passes = 0;
    for (const q of this.byDevice.values()) {
      if (!q.used) continue;
      await q.device.queue.onSubmittedWorkDone();
      const enc = q.device.createCommandEncoder();
      enc.resolveQuerySet(q.querySet, 0, q.used, q.resolve, 0);
      enc.copyBufferToBuffer(q.resolve, 0, q.read, 0, q.used * 8);
      q.device.queue.submit([enc.finish()]);
      await q.read.mapAsync(GPUMapMode.READ, 0, q.used * 8);
      const t = new BigInt64Array(q.read.getMappedRange(0, q.used * 8).slice(0));
      q.read.unmap();
      for (let i = 0; i < q.used / 2; i++) ns += Number(t[2 * i + 1] - t[2 * i]);
      passes += q.used / 2;
    }
    return { us: ns / 1000, passes, dispatches: this.dispatches };
  }
}

let passTimer: PassTimer | null = null;

export interface OrtTiming {
  /** median over runs of (GPU time of the run's compute passes) / R, µs; null without timestamp-query */
  us: number | null;
  /** wall µs of one session.run (R kernels, outputs left on the GPU) / R */
  usWall: number;
  /** compute passes and dispatches per run */
  passes: number;
  dispatches: number;
  /** program names reported by onnxruntime-web's profiling, where it reports any */
  programs: string[];
  /** output of copy 0, for the correctness check */
  y: Float32Array;
}

/** Runs the R-copy model `runs` times after `warmup`; times its GPU passes. */
export async function timeMatMulNBits(
  ort: Ort,
  device: GPUDevice,
  p: PackedLinear,
  x: Float32Array,
  m: number,
  copies: number,
  runs: number,
  warmup: number,
  /** brings the GPU's clocks up before each timed run (as our timed batches get) */
  heat: () => Promise<void> = async () => {},
): Promise<OrtTiming> {
  const model = matMulNBitsModel(p, m, copies);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['webgpu'],
    preferredOutputLocation: 'gpu-buffer',
    graphOptimizationLevel: 'disabled',
  });
  const feeds = { A: new ort.Tensor('float32', x, [m, p.k]) };
  let y: Float32Array = new Float32Array(0);
  for (let i = 0; i < warmup; i++) {
    const out = await session.run(feeds);
    if (i === 0) y = (await out.Y0.getData()) as Float32Array;
    for (const t of Object.values(out)) (t as { dispose(): void }).dispose();
  }
  const timed = device.features.has('timestamp-query');
  if (timed) passTimer ??= new PassTimer();
  kernelTimes.length = 0;
  const perRun: number[] = [];
  let passes = 0;
  let dispatches = 0;
  let wall = 0;
  for (let i = 0; i < runs; i++) {
    await heat();
    passTimer?.start();
    const t0 = performance.now();
    const out = await session.run(feeds);
    for (const d of passTimer?.devices() ?? [device]) await d.queue.onSubmittedWorkDone();
    wall += performance.now() - t0;
    for (const t of Object.values(out)) (t as { dispose(): void }).dispose();
    if (passTimer) {
      const r = await passTimer.stop();
      perRun.push(r.us / copies);
      passes = r.passes;
      dispatches = r.dispatches;
    }
  }
  const usWall = (wall * 1000) / (runs * copies);
  const programs = [...new Set(kernelTimes.map((k) => k.name))];
  await session.release();
  const sorted = perRun.sort((a, b) => a - b);
  return { us: timed && sorted.length ? sorted[sorted.length >> 1] : null, usWall, passes, dispatches, programs, y };
}
