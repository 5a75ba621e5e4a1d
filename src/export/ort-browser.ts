/**
 * onnxruntime-web for the page's worker: the wasm-only build (no WebGPU/WebGL
 * code), with its .wasm file emitted by Vite as an asset and named
 * explicitly, so the runtime never guesses a path. Loaded on the first ONNX
 * check only.
 */
import type { Ort } from './onnx-verify';

export async function browserOrt(): Promise<Ort> {
  const [ort, wasm] = await Promise.all([import('onnxruntime-web/wasm'), import('onnxruntime-web/ort-wasm-simd-threaded.wasm?url')]);
  ort.env.wasm.wasmPaths = { wasm: wasm.default };
  return ort as unknown as Ort;
}
