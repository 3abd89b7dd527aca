/**
 * Removes ended sessions' spool folders off the main thread. Removing one folder takes several
 * file-system calls (an rmdir that finds it not empty, an lstat, a readdir, an unlink per segment,
 * the rmdir), each a round trip through libuv's threads with its callback on the main thread: a
 * storm of 1,000 STOPs queued 6,000 of them in front of the sockets' closes. Instead, the
 * folders asked for in one event-loop turn go to a step thread in one task (split like steps:
 * pool/step-batcher.ts splitIntoTasks), which removes them with synchronous calls.
 *
 * If the pool cannot take the task (it is closing, or the thread died under it), the folders are
 * removed here, on the main thread, as before: a folder is never left behind for want of a thread.
 */
import type { SpoolRemovalResult, SpoolRemovalTask } from '../pool/messages.js';
import { splitIntoTasks, type BatchLimits } from '../pool/step-batcher.js';
import { TurnQueue } from '../pool/turn-queue.js';
import { removeSpool } from './spool.js';

/** What the remover needs of the pool. */
export interface SpoolRemovalRunner {
  readonly stepThreads: number;
  removeSpools(task: SpoolRemovalTask): Promise<SpoolRemovalResult>;
}

interface Pending {
  dir: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class SpoolRemover {
  readonly #pool: SpoolRemovalRunner;
  readonly #limits: Pick<BatchLimits, 'maxEntries' | 'spreadMin'>;
  readonly #queue = new TurnQueue<Pending>((queue) => this.#flush(queue));

  constructor(pool: SpoolRemovalRunner, limits: Pick<BatchLimits, 'maxEntries' | 'spreadMin'>) {
    this.#pool = pool;
    this.#limits = limits;
  }

  /** Resolves once `dir` and everything in it is gone (or was never there); rejects saying why not. */
  remove(dir: string): Promise<void> {
    return new Promise((resolve, reject) => this.#queue.push({ dir, resolve, reject }));
  }

  #flush(queue: Pending[]): void {
    for (const part of splitIntoTasks(queue, this.#pool.stepThreads, this.#limits)) void this.#send(part);
  }

  async #send(part: Pending[]): Promise<void> {
    let result: SpoolRemovalResult;
    try {
      result = await this.#pool.removeSpools({ kind: 'remove-spools', dirs: part.map((p) => p.dir) });
    } catch {
      // No thread took it: remove them here, each on its own.
      await Promise.all(part.map((p) => removeSpool(p.dir).then(p.resolve, (err: unknown) => p.reject(asError(err)))));
      return;
    }
    part.forEach((p, i) => {
      const error = result.errors[i];
      if (error) p.reject(new Error(error));
      else p.resolve();
    });
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
