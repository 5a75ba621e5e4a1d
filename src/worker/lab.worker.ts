/**
 * The dedicated module worker that owns the GPU. The page never touches
 * WebGPU; it calls this API through comlink.
 */
import * as Comlink from 'comlink';
import { detectGpu } from '../lab/detect-gpu';
import type { LabApi } from './api';

const api: LabApi = {
  // navigator.gpu is typed as always present; a browser without WebGPU leaves it undefined.
  detectGpu: () => detectGpu((self as unknown as { navigator: { gpu?: GPU } }).navigator.gpu, self.isSecureContext),
};

Comlink.expose(api);
