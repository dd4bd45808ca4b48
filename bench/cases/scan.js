// scan_mb_s: how fast the monitor follows 100 MB of output with three rarely matching on_output_match hooks, the
// rolling tail kept up to date, as the bot runs it (windows of lines no hook can match are passed over whole, see
// windowTwin); beside it, a bare read-and-split of the same file, and in the details the same scan with a listener of
// every line (`scan_every_line_mb_s`: every line made and matched one by one).
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { benchAgent, CountingPort, endOf, makeHome, startSupervisor } from '../lib/chorus.js';
import { makeLog } from '../fixtures/make-log.js';
import { median, nowMs, round, spread } from '../lib/stats.js';

const HOOKS = ['ERROR', 'Traceback \\(most recent call last\\)', 'panic: \\w+'].map((pattern) => ({
  trigger: { type: 'on_output_match', pattern, stream: 'both' }, action: 'notify_channel', max_fires: 1000,
}));

/** Reads the file in 1 MiB chunks and finds every newline: the floor under any line-based monitor. */
function bareScan(path) {
  const fd = openSync(path, 'r');
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  let lines = 0;
  try {
    for (let position = 0; ;) {
      const n = readSync(fd, chunk, 0, chunk.length, position);
      if (n === 0) break;
      position += n;
      for (let at = chunk.indexOf(10); at >= 0 && at < n; at = chunk.indexOf(10, at + 1)) lines += 1;
    }
  } finally {
    closeSync(fd);
  }
  return lines;
}

export default async function scan({ runs = 5, megabytes = 100 }) {
  const home = makeHome();
  const agent = benchAgent(home);
  // In the agent's workspace: a confined `cat` sees nothing else of the home.
  mkdirSync(agent.workspace, { recursive: true });
  const log = join(agent.workspace, 'input.log');
  const { matches } = makeLog(log, megabytes * 1024 * 1024);
  const size = statSync(log).size;
  const mb = size / (1024 * 1024);
  const port = new CountingPort();
  // A cap above the log's size: this measures the scan; rotation is part of ingest_slowdown.
  const supervisor = await startSupervisor({ home, port, logCapBytes: 4 * size });
  const chorus = [];
  const perCpu = [];
  const bare = [];
  let lineEvents = 0;
  const countLine = () => { lineEvents += 1; };
  const everyLine = [];
  for (let i = 0; i <= runs; i += 1) {
    // The last run has a listener of every line.
    const isEveryLine = i === runs;
    if (isEveryLine) supervisor.manager.on('line', countLine);
    let t0 = nowMs();
    bareScan(log);
    bare.push(mb / ((nowMs() - t0) / 1000));
    const { store } = supervisor.hooks.prepare(HOOKS);
    t0 = nowMs();
    const cpu0 = process.cpuUsage();
    const record = await supervisor.manager.spawn({ agent, command: `cat ${JSON.stringify(log)}`, withRow: store });
    await endOf(supervisor.manager, record.id);
    const rate = mb / ((nowMs() - t0) / 1000);
    const cpu = process.cpuUsage(cpu0);
    if (isEveryLine) everyLine.push(rate);
    else {
      chorus.push(rate);
      // Per second of the supervisor's own CPU: what the scan would reach on a core nobody else wants.
      perCpu.push(mb / ((cpu.user + cpu.system) / 1e6));
    }
    rmSync(record.runDir, { recursive: true, force: true });
  }
  await supervisor.hooks.idle();
  await supervisor.close();
  return {
    keys: { scan_mb_s: round(median(chorus), 0) },
    details: {
      scan_mb_s_spread: spread(chorus).map((x) => round(x, 0)),
      scan_mb_per_cpu_s: round(median(perCpu), 0),
      scan_bare_read_split_mb_s: round(median(bare), 0),
      scan_every_line_mb_s: round(median(everyLine), 0),
      scan_lines_per_run: lineEvents,
      scan_matching_lines_per_run: matches,
      scan_hook_actions_total: port.count,
      scan_runs: runs,
    },
  };
}
