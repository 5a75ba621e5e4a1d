/** Page entry: starts the lab worker (which owns the GPU), reads the saved results back and mounts the UI. */
import { mount } from 'svelte';
import App from './ui/App.svelte';
import { LabSession } from './ui/session.svelte';
import { startLabWorker } from './worker/client';
import './ui/app.css';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no <div id="app">: the page cannot mount the lab.');

const worker = startLabWorker();
// The worker keeps the queue and results (IndexedDB, src/lab/queue.ts); the session mirrors them.
const session = new LabSession(worker.lab);
// a shared link's experiments join the queue once the saved one is back (they wait for Run queue)
void session.restore().then(() => session.openShared(location.hash));
mount(App, { target, props: { worker, session } });
