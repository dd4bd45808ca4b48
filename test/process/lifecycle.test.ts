import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startManager } from '../support/manager.js';
import { nextEvent, waitFor } from '../support/wait-for.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';

const node = JSON.stringify(process.execPath);

describe('process lifecycle', () => {
  it('records output and exit code 3, with the tail in order across both streams', async () => {
    const { manager } = await startManager();
    const script = `for (let i = 0; i < 150; i++) { process.stdout.write('out ' + i + '\\n'); } for (let i = 0; i < 30; i++) { process.stderr.write('err ' + i + '\\n'); } process.exit(3);`;
    const exited = nextEvent<[ProcessRecord]>(manager, 'exited');
    const record = await manager.spawn({ agent: 'demo', command: `${node} -e ${JSON.stringify(script)}` });
    expect(record.status).toBe('running');
    expect(record.pid).toBeGreaterThan(1);
    const [ended] = await exited;
    expect(ended.status).toBe('exited');
    expect(ended.exitCode).toBe(3);
    const stdout = readFileSync(ended.stdoutLog, 'utf8');
    const stderr = readFileSync(ended.stderrLog, 'utf8');
    expect(stdout).toBe(Array.from({ length: 150 }, (_, i) => `out ${i}\n`).join(''));
    expect(stderr).toBe(Array.from({ length: 30 }, (_, i) => `err ${i}\n`).join(''));
    expect(ended.stdoutOffset).toBe(Buffer.byteLength(stdout));
  });
});
