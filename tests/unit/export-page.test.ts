/**
 * What the page's export buttons run in the worker (src/export/model-export.ts),
 * here on a model folder: the ONNX check against a result's own per-window
 * NLLs (the PyTorch numbers stand in for the lab's, which match them), the
 * AutoAWQ ZIP (read back entry by entry), file names, and the ZIP writer.
 */
import { describe, expect, it } from 'vitest';
import { parseJsonObject } from '../../src/core/config';
import type { Result } from '../../src/core/experiment';
import { summarizeProtocol } from '../../src/core/protocols';
import { readAutoAwq } from '../../src/export/autoawq-read';
import { exportFileName, exportModel, type ExportRequest } from '../../src/export/model-export';
import { nodeOrt } from '../../src/export/ort-node';
import { crc32, zipStore } from '../../src/export/zip';
import { directorySource } from '../../src/lab/source-node';
import { modelDir, modelReference, wikitextText } from '../helpers/reference';

/** The entries of a stored (uncompressed) ZIP, read through its central directory. */
function readZip(zip: Uint8Array): Map<string, Uint8Array> {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const end = zip.length - 22;
  expect(view.getUint32(end, true)).toBe(0x06054b50);
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const out = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    expect(view.getUint32(at, true)).toBe(0x02014b50);
    const size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const name = new TextDecoder().decode(zip.subarray(at + 46, at + 46 + nameLength));
    const local = view.getUint32(at + 42, true);
    expect(view.getUint32(local, true)).toBe(0x04034b50);
    const data = zip.subarray(local + 30 + view.getUint16(local + 26, true), local + 30 + view.getUint16(local + 26, true) + size);
    expect(crc32(data)).toBe(view.getUint32(at + 16, true));
    out.set(name, data);
    at += 46 + nameLength;
  }
  return out;
}

describe('zip writer', () => {
  it('CRC-32 of the standard check string, and entries read back', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    const files = readZip(zipStore([{ name: 'a.txt', bytes: new TextEncoder().encode('hello') }, { name: 'dir/b.bin', bytes: new Uint8Array([0, 255, 7]) }]));
    expect([...files.keys()]).toEqual(['a.txt', 'dir/b.bin']);
    expect(Array.from(files.get('dir/b.bin')!)).toEqual([0, 255, 7]);
  });
});

describe('exports the page asks the worker for', () => {
  const name = 'qlab-llama-6m';
  const ref = modelReference(name).rtn.w4_g128.gptq;
  const result: ExportRequest['result'] = {
    spec: { model: { kind: 'embedded', id: name }, method: { id: 'rtn', bits: 4, groupSize: 128, symmetric: false }, eval: { protocol: 'gptq', windowLength: 512, windows: 2 } },
    protocol: summarizeProtocol('gptq', 442_974, 512, 2),
    windowNll: ref.window_nll.slice(0, 2),
  } satisfies Pick<Result, 'spec' | 'protocol' | 'windowNll'>;
  const source = () => directorySource(modelDir(name));

  it('file names say model and method', () => {
    expect(exportFileName(result, 'onnx')).toBe('qlab-llama-6m-rtn-w4-g128.onnx');
    expect(exportFileName(result, 'autoawq')).toBe('qlab-llama-6m-rtn-w4-g128-awq.zip');
  });

  it('the ONNX check runs the result\'s first window in onnxruntime-web and matches its perplexity within 0.5 %', { timeout: 60_000 }, async () => {
    const stages = new Set<string>();
    // the first windows need only the start of the text
    const out = await exportModel({ result, action: { kind: 'verify', windows: 1 } }, { source: source(), ort: nodeOrt, text: async () => wikitextText().slice(0, 20_000), onProgress: (p) => stages.add(p.stage) });
    expect(out.kind).toBe('verification');
    if (out.kind !== 'verification') return;
    expect(out.windows).toBe(1);
    expect(out.labPerplexity).toBeCloseTo(Math.exp(ref.window_nll[0] / 511), 10);
    expect(Math.abs(out.differencePercent)).toBeLessThan(0.5);
    expect([...stages]).toEqual(['load', 'quantize', 'write', 'verify']);
  });

  it('the AutoAWQ download is a ZIP of config.json, the safetensors and the tokenizer, readable by our reader', { timeout: 60_000 }, async () => {
    const out = await exportModel({ result, action: { kind: 'download', format: 'autoawq' } }, { source: source() });
    expect(out.kind).toBe('file');
    if (out.kind !== 'file') return;
    expect(out.fileName).toBe('qlab-llama-6m-rtn-w4-g128-awq.zip');
    const files = readZip(out.bytes);
    expect([...files.keys()]).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']);
    const config = parseJsonObject(new TextDecoder().decode(files.get('config.json')!), 'config.json');
    const back = readAutoAwq(config, files.get('model.safetensors')!);
    expect(back.packed.get('layers.5.mlp.down')!.k).toBe(768);
  });
});
