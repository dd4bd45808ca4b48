// The chaos and soak workload: five kinds of child (quick, slow, chatty, failing, SIGTERM-ignoring), each a bash
// command that writes a known sequence, with hooks of every trigger, and what each must have written and exited with.

/** kind → how often it is picked; CHAOS_KINDS=chatty,slow narrows the mix (to reproduce one failure). */
export const KIND_WEIGHTS = Object.fromEntries(Object.entries({ quick: 30, failing: 15, slow: 20, chatty: 15, stubborn: 20 })
  .filter(([kind]) => !process.env.CHAOS_KINDS || process.env.CHAOS_KINDS.split(',').includes(kind)));

export const EXPECTED_EXIT = { quick: 0, failing: 3, slow: 0, chatty: 0, stubborn: 0 };

const CHATTY_TAIL = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A name that carries the kind and its parameters, so the checker can rebuild the expected output. */
export function pickWork(random, ledger) {
  const total = Object.values(KIND_WEIGHTS).reduce((a, b) => a + b, 0);
  let roll = random() * total;
  let kind = 'quick';
  for (const [k, w] of Object.entries(KIND_WEIGHTS)) {
    roll -= w;
    if (roll < 0) {
      kind = k;
      break;
    }
  }
  const params = {
    quick: [1 + Math.floor(random() * 40)],
    failing: [],
    slow: [25 + Math.floor(random() * 10)],
    chatty: [3, 4000 + Math.floor(random() * 8000)],
    stubborn: [15 + Math.floor(random() * 10)],
  }[kind];
  const name = [kind, ...params].join(':');
  return { kind, name, command: commandFor(name, ledger), hooks: HOOKS[kind] };
}

/** Every child first appends "<row id> <run dir>" to the ledger: the proof that it really started. */
export function commandFor(name, ledger) {
  const [kind, a, b] = parseName(name);
  const start = `echo "$CHORUS_PROCESS_ID $CHORUS_RUN_DIR" >> ${JSON.stringify(ledger)}; `;
  switch (kind) {
    case 'quick':
      return `${start}for i in $(seq 1 ${a}); do echo "quick $i"; done; echo "MARK quick"`;
    case 'failing':
      return `${start}echo "fail start"; echo "ERROR something" >&2; exit 3`;
    case 'slow':
      return `${start}for i in $(seq 1 ${a}); do echo "slow $i"; if [ $((i % 5)) -eq 0 ]; then echo "MARK slow $i"; fi; sleep 0.2; done`;
    case 'chatty':
      return `${start}for j in $(seq 1 ${a}); do seq -f "chatty $j %08g ${CHATTY_TAIL}" 1 ${b}; echo "MARK chatty $j"; done`;
    case 'stubborn':
      return `${start}trap '' TERM; for i in $(seq 1 ${a}); do echo "stubborn $i"; sleep 0.2; done`;
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

export function parseName(name) {
  const [kind, ...rest] = String(name).split(':');
  return [kind, ...rest.map(Number)];
}

/** The whole stdout a child of this name writes when nothing stops it. */
export function expectedStdout(name) {
  const [kind, a, b] = parseName(name);
  const lines = [];
  switch (kind) {
    case 'quick':
      for (let i = 1; i <= a; i += 1) lines.push(`quick ${i}`);
      lines.push('MARK quick');
      break;
    case 'failing':
      lines.push('fail start');
      break;
    case 'slow':
      for (let i = 1; i <= a; i += 1) {
        lines.push(`slow ${i}`);
        if (i % 5 === 0) lines.push(`MARK slow ${i}`);
      }
      break;
    case 'chatty':
      for (let j = 1; j <= a; j += 1) {
        for (let i = 1; i <= b; i += 1) lines.push(`chatty ${j} ${String(i).padStart(8, '0')} ${CHATTY_TAIL}`);
        lines.push(`MARK chatty ${j}`);
      }
      break;
    case 'stubborn':
      for (let i = 1; i <= a; i += 1) lines.push(`stubborn ${i}`);
      break;
    default:
      throw new Error(`unknown kind ${kind}`);
  }
  return Buffer.from(lines.map((l) => `${l}\n`).join(''));
}

export function expectedStderr(name) {
  return Buffer.from(parseName(name)[0] === 'failing' ? 'ERROR something\n' : '');
}

const mark = (action, extra = {}) => ({ trigger: { type: 'on_output_match', pattern: '^MARK ', stream: 'stdout' }, action, max_fires: 1000, ...extra });

/** Every trigger appears; actions that a journal records (all but stop_process and the rate-limited notify_channel). */
export const HOOKS = {
  quick: [{ trigger: { type: 'on_exit', exit_filter: 'any' }, action: 'spawn_branch' }, mark('inject_context')],
  failing: [
    { trigger: { type: 'on_exit', exit_filter: 'failure' }, action: 'stop_branch' },
    { trigger: { type: 'on_exit', exit_filter: 'success' }, action: 'spawn_branch' },
  ],
  slow: [
    { trigger: { type: 'on_timeout', timeout_seconds: 1 }, action: 'spawn_branch' },
    mark('spawn_branch'),
    { trigger: { type: 'on_exit', exit_filter: 'success' }, action: 'inject_context' },
  ],
  chatty: [mark('spawn_branch'), { trigger: { type: 'on_exit', exit_filter: 'any' }, action: 'spawn_branch' }],
  stubborn: [
    { trigger: { type: 'on_output_match', pattern: '^stubborn 3$', stream: 'stdout' }, action: 'stop_process' },
    { trigger: { type: 'on_exit', exit_filter: 'any' }, action: 'spawn_branch' },
  ],
};

/** A small seeded generator, so a round can be replayed. */
export function seeded(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}
