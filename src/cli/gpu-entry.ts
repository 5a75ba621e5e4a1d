/**
 * Node entry for running the lab's GPU code on Dawn (npm `webgpu`): prints
 * the adapter report, then runs every kernel check in KERNEL_CHECKS and prints
 * a table. Bundled by scripts/build-node.mjs into dist-node/gpu-entry.mjs,
 * which imports only `webgpu` and Node built-ins, so it can travel to the GPU
 * machine (see README, "Running src/gpu code on a GPU machine").
 *
 *   node dist-node/gpu-entry.mjs [--full] [--only <check>] [--json <file>]
 *
 * --full          also run the heavy shapes on a fallback (software) adapter
 * --only <name>   run one kernel check, e.g. smoke-matmul
 * --json <file>   write adapter report and every outcome as JSON
 */
import { writeFileSync } from 'node:fs';
import { formatBytes } from '../core/format';
import type { AdapterReport } from '../gpu/device';
import { nodeDevice } from './dawn';
import { MemoryLedger } from '../gpu/ledger';
import { KERNEL_CHECKS, type CheckOutcome } from './checks';

interface Options {
  full: boolean;
  only: string | null;
  json: string | null;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { full: false, only: null, json: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--full') options.full = true;
    else if (arg === '--only') options.only = argv[++i] ?? null;
    else if (arg === '--json') options.json = argv[++i] ?? null;
    else throw new Error(`gpu-entry: unknown argument "${arg}". Use --full, --only <check> or --json <file>.`);
  }
  if (options.only && !KERNEL_CHECKS.some((c) => c.name === options.only)) {
    throw new Error(`gpu-entry: no kernel check named "${options.only}"; known: ${KERNEL_CHECKS.map((c) => c.name).join(', ')}.`);
  }
  return options;
}

function adapterLine(r: AdapterReport): string {
  const name = [r.vendor, r.architecture, r.device, r.description].filter(Boolean).join(' / ') || 'unnamed adapter';
  const wanted = ['timestamp-query', 'shader-f16', 'subgroups'].map((f) => `${f} ${r.features.includes(f) ? 'yes' : 'no'}`);
  return (
    `adapter: ${name} · fallback ${r.isFallbackAdapter ? 'yes' : 'no'} · ${wanted.join(', ')} · ` +
    `maxBufferSize ${formatBytes(r.limits.maxBufferSize)}, maxStorageBufferBindingSize ${formatBytes(r.limits.maxStorageBufferBindingSize)}, ` +
    `maxComputeWorkgroupStorageSize ${formatBytes(r.limits.maxComputeWorkgroupStorageSize)}`
  );
}

function row(check: string, o: CheckOutcome): string {
  return [
    check.padEnd(14),
    o.label.padEnd(16),
    (o.passed ? 'ok' : 'FAIL').padEnd(5),
    o.maxAbsError.toExponential(2).padStart(9),
    o.maxErrorRatio.toFixed(3).padStart(8),
    String(o.compared).padStart(8),
    o.ms.toFixed(3).padStart(10),
    o.rate.padStart(16),
  ].join(' ');
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  console.log(`qlab gpu-entry · Node ${process.version} · Dawn (npm webgpu) · ${new Date().toISOString()}`);
  let opened: Awaited<ReturnType<typeof nodeDevice>>;
  try {
    opened = await nodeDevice();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 2;
  }
  const { device, report } = opened;
  console.log(`adapter report: ${JSON.stringify(report)}`);
  console.log(adapterLine(report));
  const ledger = new MemoryLedger(device);

  const header = [
    'check'.padEnd(14),
    'case'.padEnd(16),
    'pass'.padEnd(5),
    'max|err|'.padStart(9),
    'err/tol'.padStart(8),
    'compared'.padStart(8),
    'ms'.padStart(10),
    'rate'.padStart(16),
  ].join(' ');
  const lines: string[] = [];
  const outcomes: Array<{ check: string } & CheckOutcome> = [];
  let failures = 0;
  for (const check of KERNEL_CHECKS) {
    if (options.only && check.name !== options.only) continue;
    console.log(`\n${check.name}: ${check.protocol}`);
    for (const c of check.cases) {
      if (c.heavy && report.isFallbackAdapter && !options.full) {
        console.log(`  ${c.label}: skipped on a fallback adapter (pass --full to run it)`);
        continue;
      }
      try {
        const outcome = await c.run(ledger);
        outcomes.push({ check: check.name, ...outcome });
        lines.push(row(check.name, outcome));
        console.log(`  ${lines[lines.length - 1]}`);
        if (!outcome.passed) failures++;
      } catch (err) {
        failures++;
        const message = err instanceof Error ? err.message : String(err);
        lines.push(`${check.name.padEnd(14)} ${c.label.padEnd(16)} ERROR ${message}`);
        console.log(`  ${lines[lines.length - 1]}`);
      }
    }
  }

  console.log(`\n${adapterLine(report)}\n${header}\n${lines.join('\n')}`);
  console.log(`${outcomes.filter((o) => o.passed).length} passed, ${failures} failed`);
  if (options.json) {
    writeFileSync(options.json, JSON.stringify({ adapter: report, outcomes }, null, 2));
    console.log(`results written to ${options.json}`);
  }
  device.destroy();
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
