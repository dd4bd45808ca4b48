// One recovery, timed from opening the store until the supervisor watches every live process and has settled every
// ended one (the start-up sequence of src/main.ts startRuntime). Prints one JSON line.
import { CountingPort, startSupervisor } from '../lib/chorus.js';
import { nowMs } from '../lib/stats.js';

const home = process.argv[2];
const port = new CountingPort();
const t0 = nowMs();
// The processes belong to the case that started them: this worker must leave them running when it exits.
const supervisor = await startSupervisor({ home, port, ownsProcesses: false });
const startupMs = nowMs() - t0;
await supervisor.hooks.idle();
const untilHooksDoneMs = nowMs() - t0;
const watching = supervisor.manager.list({ status: 'running' }).filter((r) => supervisor.manager.isWatching(r.id)).length;
const settled = supervisor.manager.list({ status: 'exited' }).filter((r) => r.exitCode === 3).length;
await supervisor.close();
process.stdout.write(`${JSON.stringify({ startupMs, untilHooksDoneMs, watching, settled, hookActions: port.count })}\n`);
process.exit(0);
