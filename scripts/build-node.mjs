// Bundles the Node entries (src/cli/*.ts and bench/*.ts listed below) into
// dist-node/<name>.mjs: ES modules that import only `webgpu` and Node
// built-ins, with the WGSL sources inlined, so dist-node/ plus .gpu/ is all
// that must travel to a GPU machine (see README).
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { brotliCompressSync, constants as zlibConstants } from 'node:zlib';
import { builtinModules } from 'node:module';
import { build } from 'vite';

const root = new URL('..', import.meta.url).pathname;
export const ENTRIES = {
  'gpu-entry': 'src/cli/gpu-entry.ts',
  lab: 'src/cli/lab.ts',
  'bench-kernels': 'bench/kernels.ts',
  'bench-gptq': 'bench/gptq.ts',
  'hub-model': 'bench/hub-model.ts',
  'bench-calibrated': 'bench/calibrated.ts',
};

export async function buildNode(names = Object.keys(ENTRIES)) {
  const input = Object.fromEntries(names.filter((n) => existsSync(`${root}${ENTRIES[n]}`)).map((n) => [n, ENTRIES[n]]));
  await build({
    root,
    configFile: false,
    publicDir: false,
    logLevel: 'warn',
    build: {
      ssr: true,
      outDir: 'dist-node',
      emptyOutDir: false,
      target: 'node20',
      minify: false,
      sourcemap: false,
      rollupOptions: { input, output: { entryFileNames: '[name].mjs', chunkFileNames: '[name]-[hash].mjs', format: 'es' } },
    },
    ssr: { target: 'node', noExternal: true, external: ['webgpu'] },
  });
  // Guard what makes the bundles portable: nothing but `webgpu` and built-ins stays external.
  const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
  for (const name of Object.keys(input)) {
    const code = readFileSync(`${root}dist-node/${name}.mjs`, 'utf8');
    const imports = [...code.matchAll(/^\s*import\s[^'"]*?['"]([^'"]+)['"]/gm), ...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);
    const foreign = imports.filter((spec) => spec !== 'webgpu' && !builtins.has(spec) && !spec.startsWith('./'));
    if (foreign.length) throw new Error(`dist-node/${name}.mjs imports ${foreign.join(', ')}: only 'webgpu' and Node built-ins may stay external.`);
  }
  if (input['bench-kernels']) packOrtWeb();
  if (input.lab) packOrtWasm();
  return Object.keys(input);
}

// `lab export --verify` runs onnxruntime-web's plain wasm backend: its loader
// and its .wasm beside the bundle in dist-node/ort/, the .wasm brotli-packed
// (14 MB → about 4 MB); the CLI unpacks it to a temporary folder on first use.
function packOrtWasm() {
  const from = `${root}node_modules/onnxruntime-web/dist/`;
  const to = `${root}dist-node/ort/`;
  if (!existsSync(`${from}ort-wasm-simd-threaded.wasm`)) return;
  mkdirSync(to, { recursive: true });
  copyFileSync(`${from}ort-wasm-simd-threaded.mjs`, `${to}ort-wasm-simd-threaded.mjs`);
  const wasm = 'ort-wasm-simd-threaded.wasm';
  if (existsSync(`${to}${wasm}.br`) && statSync(`${to}${wasm}.br`).mtimeMs > statSync(from + wasm).mtimeMs) return;
  writeFileSync(`${to}${wasm}.br`, brotliCompressSync(readFileSync(from + wasm), { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 9, [zlibConstants.BROTLI_PARAM_LGWIN]: 24 } }));
}

// The kernel bench loads onnxruntime-web's WebGPU build at run time from
// dist-node/ort/: its module, its asyncify loader and its .wasm, brotli-packed
// (27 MB → about 4 MB) so that dist-node stays small enough to travel.
function packOrtWeb() {
  const from = `${root}node_modules/onnxruntime-web/dist/`;
  const to = `${root}dist-node/ort/`;
  if (!existsSync(`${from}ort.webgpu.min.mjs`)) return;
  mkdirSync(to, { recursive: true });
  for (const f of ['ort.webgpu.min.mjs', 'ort-wasm-simd-threaded.asyncify.mjs']) copyFileSync(from + f, to + f);
  const wasm = 'ort-wasm-simd-threaded.asyncify.wasm';
  if (existsSync(`${to}${wasm}.br`) && statSync(`${to}${wasm}.br`).mtimeMs > statSync(from + wasm).mtimeMs) return;
  const packed = brotliCompressSync(readFileSync(from + wasm), {
    params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 9, [zlibConstants.BROTLI_PARAM_LGWIN]: 24 },
  });
  writeFileSync(`${to}${wasm}.br`, packed);
}

if (process.argv[1] && process.argv[1].endsWith('build-node.mjs')) {
  const names = await buildNode(process.argv.slice(2).length ? process.argv.slice(2) : undefined);
  console.log(`built ${names.map((n) => `dist-node/${n}.mjs`).join(', ')}`);
}
