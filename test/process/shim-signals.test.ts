import { describe, expect, it } from 'vitest';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { startManager } from '../support/manager.js';
import { nextEvent, waitFor } from '../support/wait-for.js';

const SIGNALS = ['SIGUSR1', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGALRM', 'SIGINT', 'SIGTERM', 'SIGWINCH'] as const;

describe('the shim under signals sent to its group', () => {
  it.each(SIGNALS)('survives %s to the group while the command traps it, and still records the exit code', async (signal) => {
    const { manager } = await startManager();
    const name = signal.slice(3);
    // The command traps the signal, says so, then ends by itself with code 7.
    const command = `trap 'echo got ${name}; exit 7' ${name}; echo ready; while :; do sleep 0.05; done`;
    const lines: string[] = [];
    manager.on('line', (l) => lines.push(l.text));
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited', undefined, 20_000);
    const record = await manager.spawn({ agent: 'demo', command });
    await waitFor(() => lines.includes('ready'), { what: 'ready' });
    process.kill(-record.pgid!, signal);
    const [ended] = await exited;
    expect(lines).toContain(`got ${name}`);
    expect(ended.status).toBe('exited');
    expect(ended.exitCode).toBe(7);
  });

  it('survives a script that signals its own group (kill -HUP 0) and records the code it ends with', async () => {
    const { manager } = await startManager();
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited', undefined, 20_000);
    await manager.spawn({ agent: 'demo', command: `trap 'echo hup' HUP; kill -HUP 0; sleep 0.2; exit 5` });
    const [ended] = await exited;
    expect(ended.status).toBe('exited');
    expect(ended.exitCode).toBe(5);
  });
});
