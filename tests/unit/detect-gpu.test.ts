import { describe, expect, it } from 'vitest';
import { detectGpu, WEBGPU_HELP } from '../../src/lab/detect-gpu';

/** Just enough of a GPUAdapter for describeAdapter. */
function fakeAdapter(): GPUAdapter {
  return {
    info: { vendor: 'acme', architecture: 'rdna9', device: '', description: 'Acme Radeon', isFallbackAdapter: false },
    features: new Set(['timestamp-query', 'subgroups']),
    limits: {
      maxBufferSize: 2 ** 32,
      maxStorageBufferBindingSize: 2 ** 31 - 4,
      maxComputeWorkgroupStorageSize: 32768,
      maxComputeInvocationsPerWorkgroup: 1024,
      maxComputeWorkgroupsPerDimension: 65535,
      maxStorageBuffersPerShaderStage: 10,
    },
  } as unknown as GPUAdapter;
}

function fakeGpu(requestAdapter: () => Promise<GPUAdapter | null>): GPU {
  return { requestAdapter } as unknown as GPU;
}

describe('detectGpu', () => {
  it('describes the adapter it gets', async () => {
    const d = await detectGpu(fakeGpu(async () => fakeAdapter()));
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.adapter.vendor).toBe('acme');
    expect(d.adapter.isFallbackAdapter).toBe(false);
    expect(d.adapter.features).toEqual(['subgroups', 'timestamp-query']);
    expect(d.adapter.limits.maxStorageBufferBindingSize).toBe(2 ** 31 - 4);
  });

  it('explains a missing navigator.gpu, naming browsers and flags', async () => {
    const d = await detectGpu(undefined);
    expect(d).toMatchObject({ ok: false, cause: 'no-webgpu' });
    if (d.ok) return;
    expect(d.reason).toContain('navigator.gpu is missing');
    const help = d.help.join('\n');
    for (const needle of ['Chrome or Edge 113', '--enable-unsafe-webgpu', 'chrome://flags', 'Chrome 121', 'Safari 26', 'Firefox 141', 'blocklist', 'hardware acceleration']) {
      expect(help).toContain(needle);
    }
  });

  it('blames an insecure page when that is why navigator.gpu is missing', async () => {
    const d = await detectGpu(undefined, false);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.reason).toMatch(/secure/);
  });

  it('explains a null adapter', async () => {
    const d = await detectGpu(fakeGpu(async () => null));
    expect(d).toMatchObject({ ok: false, cause: 'no-adapter', help: [...WEBGPU_HELP] });
  });

  it('passes on the message when requestAdapter() throws', async () => {
    const d = await detectGpu(
      fakeGpu(async () => {
        throw new Error('GPU process crashed');
      }),
    );
    expect(d).toMatchObject({ ok: false, cause: 'error' });
    if (!d.ok) expect(d.reason).toContain('GPU process crashed');
  });
});
