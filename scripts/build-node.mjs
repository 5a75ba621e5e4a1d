// Bundles the Node entries (src/cli/*.ts and bench/*.ts listed below) into
// dist-node/<name>.mjs: ES modules that import only `webgpu` and Node
// built-ins, with the WGSL sources inlined, so dist-node/ plus .gpu/ is all
// that must travel to a GPU machine (see README).
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { build } from 'vite';

const root = new URL('..', import.meta.url).pathname;
export const ENTRIES = {
  'gpu-entry': 'src/cli/gpu-entry.ts',
  lab: 'src/cli/lab.ts',
  'bench-kernels': 'bench/kernels.ts',
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
  return Object.keys(input);
}

if (process.argv[1] && process.argv[1].endsWith('build-node.mjs')) {
  const names = await buildNode(process.argv.slice(2).length ? process.argv.slice(2) : undefined);
  console.log(`built ${names.map((n) => `dist-node/${n}.mjs`).join(', ')}`);
}
