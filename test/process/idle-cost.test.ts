import { describe, expect, it } from 'vitest';
import type { ResourceSample } from '../../src/process/events.js';
import { SpreadRound } from '../../src/process/spread-round.js';
import type { ProcessRecord } from '../../src/store/process-repo.js';
import { startManager } from '../support/manager.js';
import { nextEvent, waitFor } from '../support/wait-for.js';

const node = JSON.stringify(process.execPath);

describe('a supervisor whose processes sleep', () => {
  it('samples no resources while nobody looks', async () => {
    const { manager } = await startManager({ resourceIntervalMs: 100 });
    const sleeper = await manager.spawn({ agent: 'demo', command: 'sleep 30' });
    const samples: ResourceSample[] = [];
    manager.on('resources', (sample) => samples.push(sample));
    // A window of a second and more, marked by a real process's own output rather than a fixed sleep.
    const marker = await manager.spawn({ agent: 'demo', command: `${node} -e "setTimeout(() => console.log('done'), 1200)"` });
    await nextEvent(manager, 'line', (line: { processId: number; text: string }) => line.processId === marker.id && line.text === 'done');
    expect(samples.filter((s) => s.processId === sleeper.id)).toEqual([]);
    expect(manager.usage(sleeper.id)).toBeUndefined();
  });

  it('samples a process at the rate a subscriber (a watchdog) asks for, and stops when it unsubscribes', async () => {
    const { manager } = await startManager({ resourceIntervalMs: 60_000 });
    const record = await manager.spawn({ agent: 'demo', command: `${node} -e "setInterval(() => {}, 1000)"` });
    const seen: ResourceSample[] = [];
    const unsubscribe = manager.resources.subscribe(record.id, (sample) => seen.push(sample), { intervalMs: 100 });
    expect(manager.resources.intervalMs).toBe(100);
    await waitFor(() => seen.length >= 3, { what: 'three samples' });
    expect(seen[0]).toMatchObject({ processId: record.id, processCount: expect.any(Number) });
    expect(seen.at(-1)!.rssBytes).toBeGreaterThan(0);
    expect(seen.at(-1)!.processCount).toBeGreaterThanOrEqual(2); // the shim and node
    unsubscribe();
    expect(manager.resources.intervalMs).toBeUndefined();
    const release = manager.resources.interest(record.id);
    expect(manager.resources.intervalMs).toBe(60_000);
    release();
    expect(manager.resources.intervalMs).toBeUndefined();
  });

  it('gives a person who asks a fresh sample, and the rate falls back once the process ends', async () => {
    const { manager } = await startManager();
    const record = await manager.spawn({ agent: 'demo', command: 'sleep 30' });
    expect(manager.usage(record.id)).toBeUndefined();
    const asked = manager.usage(record.id, { maxAgeMs: 0 });
    expect(asked).toMatchObject({ processId: record.id });
    expect(asked!.processCount).toBeGreaterThanOrEqual(1);
    expect(asked!.rssBytes).toBeGreaterThan(0);
    expect(Date.now() - asked!.sampledAt).toBeLessThan(5_000);
    manager.resources.interest(record.id, { intervalMs: 50 });
    await manager.kill({ id: record.id }, { by: 'test' });
    expect(manager.resources.intervalMs).toBeUndefined();
    expect(manager.usage(record.id)).toBeUndefined();
  });

  it('sees an adopted process end through its exit file, with no poll to find it', async () => {
    const { home } = await startManager({ supervise: false });
    const { manager: client } = await startManager({ home, supervise: false });
    const record = await client.spawn({ agent: 'demo', command: `${node} -e "setTimeout(() => process.exit(3), 800)"` });
    const { manager } = await startManager({ home, pollIntervalMs: 60_000, safetyNetMs: 600_000, identityCheckMs: 600_000 });
    expect(manager.isWatching(record.id)).toBe(true);
    const [ended] = await nextEvent<[ProcessRecord]>(manager, 'exited', (p) => p.id === record.id, 10_000);
    expect(ended).toMatchObject({ status: 'exited', exitCode: 3 });
  });

  it('adopts a process a client started through the write event of the store, with no poll to find it', async () => {
    const { home, manager } = await startManager({ pollIntervalMs: 60_000, safetyNetMs: 600_000, identityCheckMs: 600_000 });
    const { manager: client } = await startManager({ home, supervise: false });
    const adopted = nextEvent<[ProcessRecord]>(manager, 'adopted', () => true, 10_000);
    const record = await client.spawn({ agent: 'demo', command: 'sleep 30' });
    const [seen] = await adopted;
    expect(seen.id).toBe(record.id);
    expect(manager.isWatching(record.id)).toBe(true);
  });

  it('settles a process a client stopped through the write event of the store, with no poll to find it', async () => {
    const { home, manager } = await startManager({ pollIntervalMs: 60_000, safetyNetMs: 600_000, identityCheckMs: 600_000 });
    const { manager: client } = await startManager({ home, supervise: false });
    const adopted = nextEvent<[ProcessRecord]>(manager, 'adopted', () => true, 10_000);
    const record = await client.spawn({ agent: 'demo', command: 'sleep 30' });
    await adopted;
    // A forced stop ends the shim too: no exit file is written, only the client's row says the process ended.
    const killed = nextEvent<[ProcessRecord]>(manager, 'killed', (p) => p.id === record.id, 10_000);
    await client.kill({ id: record.id }, { by: 'cli', force: true });
    const [ended] = await killed;
    expect(ended).toMatchObject({ status: 'killed', stoppedBy: 'cli' });
    expect(manager.isWatching(record.id)).toBe(false);
  });

  it('finds an adopted process that vanished without an exit file through the spread-out safety net', async () => {
    const { home } = await startManager({ supervise: false });
    const { manager: client } = await startManager({ home, supervise: false });
    const record = await client.spawn({ agent: 'demo', command: 'sleep 30' });
    const { manager } = await startManager({ home, pollIntervalMs: 50, safetyNetMs: 500, identityCheckMs: 600_000 });
    expect(manager.isWatching(record.id)).toBe(true);
    const lost = nextEvent<[ProcessRecord]>(manager, 'lost', (p) => p.id === record.id, 10_000);
    process.kill(-record.pgid!, 'SIGKILL');
    const [ended] = await lost;
    expect(ended).toMatchObject({ status: 'lost', exitCode: null });
  });
});

describe('SpreadRound', () => {
  /** One tick's items, as an array. */
  const slice = (round: SpreadRound<number>, items: () => number[]): number[] => {
    const visited: number[] = [];
    round.visit(items, (item) => visited.push(item));
    return visited;
  };

  it('visits every item once per period, the same share each tick', () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const round = new SpreadRound<number>(10_000, 500);
    const visited: number[][] = [];
    for (let tick = 0; tick < 20; tick += 1) visited.push(slice(round, () => items));
    expect(visited.every((slice) => slice.length === 50)).toBe(true);
    expect(visited.flat()).toEqual(items);
    // The next round starts from the items as they are then.
    expect(slice(round, () => [7, 8])).toEqual([7]);
  });

  it('visits the same shares without building an array per tick', () => {
    const round = new SpreadRound<number>(10_000, 5_000);
    const seen: number[] = [];
    for (let tick = 0; tick < 3; tick += 1) round.visit(() => [1, 2, 3], (item) => seen.push(item));
    expect(seen).toEqual([1, 2, 3, 1, 2]);
  });
});
