import { findBwrap, probeSandbox } from '../process/sandbox.js';
import { fail, ok, warn, type Check } from './check.js';

/** Whether agent processes will be confined, from a real probe run of bwrap (as the supervisor does at start-up). */
export const sandboxCheck: Check = {
  name: 'sandbox',
  run: ({ config }) => {
    const mode = config.sandboxMode;
    if (mode === 'off') {
      return warn('CHORUS_SANDBOX=off: agent processes run unconfined, with every file and process of this user in reach', 'set CHORUS_SANDBOX=auto (or required) to confine them with bubblewrap');
    }
    const probe = probeSandbox(findBwrap());
    if (probe.isAvailable) return ok(`${probe.bwrap} works: agent processes run confined (CHORUS_SANDBOX=${mode})`);
    const detail = mode === 'required'
      ? 'CHORUS_SANDBOX=required but bwrap cannot run: every spawn will be refused'
      : 'CHORUS_SANDBOX=auto and bwrap cannot run: agent processes run unconfined';
    return (mode === 'required' ? fail : warn)(detail, probe.problem ?? 'install bubblewrap (apt-get install bubblewrap)');
  },
};
