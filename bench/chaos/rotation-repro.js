// Reproduces log loss at rotation without any crash: one supervisor (in this process), a 256 KiB cap, twelve chatty
// children one after another. For each: are `.1` + the current file the exact tail of what the child wrote, and do the
// stored logical offsets add up to what it wrote? `node bench/chaos/rotation-repro.js` (after npm run build).
import { existsSync, readFileSync } from 'node:fs';
import { benchAgent, endOf, makeHome, startSupervisor } from '../lib/chorus.js';
import { commandFor, expectedStdout } from './workload.js';

const home = makeHome();
const agent = benchAgent(home);
const supervisor = await startSupervisor({ home, logCapBytes: 256 * 1024 });
let bad = 0;
for (let i = 0; i < 12; i += 1) {
  const name = `chatty:3:${4000 + i * 500}`;
  const record = await supervisor.manager.spawn({ agent, command: commandFor(name, '/dev/null'), name });
  const ended = await endOf(supervisor.manager, record.id);
  const rotated = existsSync(`${record.stdoutLog}.1`) ? readFileSync(`${record.stdoutLog}.1`) : Buffer.alloc(0);
  const current = readFileSync(record.stdoutLog);
  const written = expectedStdout(name);
  const kept = Buffer.concat([rotated, current]);
  const isExactTail = written.subarray(written.length - kept.length).equals(kept);
  const logicalEnd = ended.stdoutRotated + current.length;
  const isOk = isExactTail && logicalEnd === written.length;
  if (!isOk) bad += 1;
  process.stdout.write(`${isOk ? 'ok  ' : 'LOST'} ${name}: wrote ${written.length}, logical end ${logicalEnd} (${written.length - logicalEnd} bytes unaccounted), files hold the exact tail: ${isExactTail}\n`);
}
await supervisor.close();
process.stdout.write(`${bad} of 12 children lost bytes at rotation\n`);
process.exit(bad ? 1 : 0);
