import { execFileSync } from 'node:child_process';
import { constants as fsConstants, existsSync, promises as fsp, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, errorMessage } from '../errors.js';

/** The most one send_input carries. */
export const INPUT_MAX_BYTES = 64 * 1024;
/** How long a write waits for a process that reads its input slowly before giving up. */
const WRITE_WAIT_MS = 5_000;
const RETRY_MS = 20;

export interface InputFiles {
  fifo: string;
  control: string;
  /** Written once input was ended, so later input is refused. */
  closedMarker: string;
}

export function inputFiles(runDir: string): InputFiles {
  return { fifo: join(runDir, 'stdin'), control: join(runDir, 'stdin.control'), closedMarker: join(runDir, 'stdin.closed') };
}

export function isInputClosed(files: InputFiles): boolean {
  return existsSync(files.closedMarker);
}

/** Creates the stdin and control FIFOs of an interactive process (mkfifo: Node has no binding for it). */
export function createInputFifos(files: InputFiles): void {
  try {
    execFileSync('mkfifo', ['-m', '600', files.fifo, files.control], { stdio: 'ignore' });
  } catch (error) {
    throw new AppError('SPAWN_FAILED', `could not create the stdin FIFO (${errorMessage(error)})`, { cause: error });
  }
}

const writers = new Map<string, Promise<unknown>>();

/** Writes to the same FIFO from this process go one after another, so two texts never interleave. */
function serialize<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = writers.get(key) ?? Promise.resolve();
  const next = previous.then(work, work);
  writers.set(key, next.catch(() => undefined));
  return next;
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** How long a FIFO without a reader is retried: the shim's helper opens it a moment after the spawn. */
const READER_WAIT_MS = 3_000;

/** Opens a FIFO for writing without ever blocking: no reader (ENXIO) for long, or no FIFO (ENOENT), is a clear refusal. */
async function openWriter(path: string, what: string): Promise<fsp.FileHandle> {
  const deadline = Date.now() + READER_WAIT_MS;
  for (;;) {
    try {
      return await fsp.open(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
    } catch (error) {
      if (code(error) === 'ENOENT') throw new AppError('INPUT_CLOSED', `${what} is gone: the process ended`);
      if (code(error) !== 'ENXIO') throw error;
      if (Date.now() > deadline) throw new AppError('INPUT_CLOSED', `${what} has no reader: the process is ending or has closed its input`);
    }
    await sleep(RETRY_MS);
  }
}

/**
 * Writes `text` to the process's stdin, whole: a FIFO full because the process does not read is waited on for a few
 * seconds; if nothing could be written the text is refused, if only part, the error says how much went through.
 */
export async function sendInput(files: InputFiles, text: string, options: { isEof?: boolean } = {}): Promise<{ bytes: number }> {
  const data = Buffer.from(text, 'utf8');
  if (data.length > INPUT_MAX_BYTES) throw new AppError('INVALID_INPUT', `text must be at most ${INPUT_MAX_BYTES} bytes (got ${data.length})`);
  return serialize(files.fifo, async () => {
    if (isInputClosed(files)) throw new AppError('INPUT_CLOSED', 'stdin is closed: input was ended with eof');
    if (data.length) {
      const handle = await openWriter(files.fifo, 'stdin');
      try {
        await writeWhole(handle, data);
      } finally {
        await handle.close();
      }
    }
    if (options.isEof) await closeInput(files);
    return { bytes: data.length };
  });
}

async function writeWhole(handle: fsp.FileHandle, data: Buffer): Promise<void> {
  let written = 0;
  const deadline = Date.now() + WRITE_WAIT_MS;
  while (written < data.length) {
    try {
      const { bytesWritten } = await handle.write(data, written, data.length - written);
      written += bytesWritten;
      continue;
    } catch (error) {
      if (code(error) === 'EPIPE') throw new AppError('INPUT_CLOSED', `stdin has no reader any more after ${written} of ${data.length} bytes`);
      if (code(error) !== 'EAGAIN') throw error;
    }
    if (Date.now() > deadline) {
      throw new AppError('INPUT_FULL', written === 0
        ? `the process has not read its input for ${WRITE_WAIT_MS / 1000}s and its stdin buffer is full: nothing was written; try again when it reads`
        : `the process stopped reading its input: only ${written} of ${data.length} bytes were written`);
    }
    await sleep(RETRY_MS);
  }
}

/** EOF: the helper that holds the FIFO open ends on a line on its control FIFO; a marker refuses later input. */
async function closeInput(files: InputFiles): Promise<void> {
  const handle = await openWriter(files.control, 'stdin');
  try {
    await handle.write('eof\n');
  } finally {
    await handle.close();
  }
  writeFileSync(files.closedMarker, `${new Date().toISOString()}\n`, { mode: 0o600 });
}
