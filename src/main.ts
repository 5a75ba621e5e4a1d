/** Page entry: starts the lab worker (which owns the GPU) and mounts the UI. */
import { mount } from 'svelte';
import App from './ui/App.svelte';
import { LabSession } from './ui/session.svelte';
import { startLabWorker } from './worker/client';
import './ui/app.css';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no <div id="app">: the page cannot mount the lab.');

const worker = startLabWorker();
mount(App, { target, props: { worker, session: new LabSession(worker.lab) } });
