/**
 * onnxruntime-web under Node (tests, the CLI): its Node build, wasm backend,
 * files from node_modules or from wasmPaths. Kept out of onnx-verify.ts so the
 * page's bundle never sees this import (it would pull in the WebGPU build).
 */
import type { Ort } from './onnx-verify';

export const nodeOrt = (): Promise<Ort> => import('onnxruntime-web');
