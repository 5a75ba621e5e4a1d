// `npm start`: installs, builds and serves the lab on localhost, printing the URL.
import { spawn } from 'node:child_process';
import { ensureNodeModules, root, run } from './setup.mjs';

ensureNodeModules();
console.log('[start] building the lab (vite build)');
run('npx vite build --logLevel warn');
const port = process.env.PORT ?? '4173';
const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', port, '--strictPort'], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});
server.stdout.on('data', (chunk) => process.stdout.write(chunk));
const url = `http://127.0.0.1:${port}/`;
setTimeout(() => console.log(`\nqlab is running at ${url}\nOpen it in a browser with WebGPU (Chrome/Edge 113+; Firefox 141+ on Windows; Safari 26).\nPress Ctrl+C to stop.`), 1500);
process.on('SIGINT', () => { server.kill('SIGINT'); process.exit(0); });
