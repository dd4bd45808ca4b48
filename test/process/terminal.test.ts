import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { stripTerminal, terminalArgv } from '../../src/process/terminal.js';

describe('terminal wrapper', () => {
  it('runs the argv under script, exec-ed so its shell steps aside, quoted whole', () => {
    expect(terminalArgv(['/bin/bash', '-c', "echo 'hi'"], '/usr/bin/script')).toEqual([
      '/usr/bin/script', '-q', '-e', '-f', '-E', 'auto', '-c', `exec '/bin/bash' '-c' 'echo '\\''hi'\\'''`, '/dev/null',
    ]);
  });

  it('without script, refuses with how to install it', () => {
    let error: unknown;
    try {
      terminalArgv(['/bin/sh', '-c', 'true'], null);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('TTY_UNAVAILABLE');
    expect((error as AppError).message).toMatch(/util-linux `script`.*apt-get install bsdutils/);
  });

  it('strips escape sequences and redraws for readers', () => {
    expect(stripTerminal('\u001b[1;32mok\u001b[0m done')).toBe('ok done');
    expect(stripTerminal('\u001b]0;title\u0007>>> 1+1')).toBe('>>> 1+1');
    expect(stripTerminal('progress 10%\rprogress 100%')).toBe('progress 100%');
    expect(stripTerminal('\u001b[?2004hplain\u001b[?2004l')).toBe('plain');
  });
});
