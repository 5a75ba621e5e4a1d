/** Page entry: starts the lab worker (which owns the GPU), reads the saved results back and mounts the UI. */
import { mount } from 'svelte';
import { idbKeyValue, LabStore } from './lab/store';
import App from './ui/App.svelte';
import { LabSession } from './ui/session.svelte';
import { startLabWorker } from './worker/client';
import './ui/app.css';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no <div id="app">: the page cannot mount the lab.');

const worker = startLabWorker();
// Without IndexedDB (some private windows) the lab still runs; its results then last as long as the page.
const store = typeof indexedDB === 'undefined' ? null : new LabStore(idbKeyValue());
const session = new LabSession(worker.lab, store);
if (!store) session.storageProblems = ['This browser gives the page no IndexedDB, so results will not survive a reload.'];
// a shared link's experiments join the queue once the saved one is back (they wait for Run queue)
void session.restore().then(() => session.openShared(location.hash));
mount(App, { target, props: { worker, session } });
