import fs from 'node:fs';
import path from 'node:path';
import { repairLogs } from '../spool/log.js';

/**
 * A session's spool: one folder under DATA_DIR/spool named by the server-generated session id,
 * holding its chunks and results logs (segment files: see spool/log.ts for their format).
 */
const SPOOL_SUBDIR = 'spool';
/** Present in a spool whose session asked to keep it: start-up recovery leaves it alone. */
export const KEEP_MARKER = '.keep';

export function spoolRoot(dataDir: string): string {
  return path.join(dataDir, SPOOL_SUBDIR);
}

export function spoolDir(dataDir: string, sessionId: string): string {
  return path.join(spoolRoot(dataDir), sessionId);
}

export async function createSpool(dir: string, keep: boolean): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true });
  if (keep) await fs.promises.writeFile(path.join(dir, KEEP_MARKER), '');
}

/** How a spool folder is removed, on the main thread or a pool thread (sessions/spool-remover.ts). */
const REMOVE = { recursive: true, force: true, maxRetries: 3 } as const;

export async function removeSpool(dir: string): Promise<void> {
  await fs.promises.rm(dir, REMOVE);
}

/**
 * The same, blocking: for a pool thread, which removes many in one task. A spool folder holds
 * only files (its segments and the keep marker), so it is removed as one: a readdir, an unlink per
 * file, one rmdir. A recursive rm first tries an rmdir that fails (and builds its error), then
 * stats every entry: on ext4 that doubled the CPU a removal costs, which a storm of STOPs pays
 * while its sockets close (docs/PERFORMANCE.md, "The storm's spool removals"). Anything else
 * found (a folder inside, a file that appeared meanwhile, any error) goes to the recursive rm,
 * which then says what is wrong.
 */
export function removeSpoolSync(dir: string): void {
  try {
    for (const name of fs.readdirSync(dir)) {
      try {
        fs.unlinkSync(path.join(dir, name));
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
      }
    }
    fs.rmdirSync(dir);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    removeTreeSync(dir);
  }
}

/** Node's recursive rm of a spool folder, blocking: removeSpoolSync's fallback (and the bench's "as before"). */
export function removeTreeSync(dir: string): void {
  fs.rmSync(dir, REMOVE);
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** Bytes currently held by a spool folder (0 when gone). */
export async function spoolSizeBytes(dir: string): Promise<number> {
  let total = 0;
  try {
    for (const name of await fs.promises.readdir(dir)) {
      const st = await fs.promises.stat(path.join(dir, name)).catch(() => null);
      if (st?.isFile()) total += st.size;
    }
  } catch {
    return 0;
  }
  return total;
}

/**
 * Removes the spools a crash left behind (a running service owns none yet). Spools marked to be
 * kept stay, each log cut at its first torn record. Returns the names removed and what was cut.
 */
export async function recoverSpools(dataDir: string): Promise<{ removed: string[]; repaired: { spool: string; segment: string; cutBytes: number }[] }> {
  const root = spoolRoot(dataDir);
  await fs.promises.mkdir(root, { recursive: true });
  const removed: string[] = [];
  const repaired: { spool: string; segment: string; cutBytes: number }[] = [];
  for (const entry of await fs.promises.readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(root, entry.name);
    if (fs.existsSync(path.join(dir, KEEP_MARKER))) {
      for (const cut of await repairLogs(dir)) repaired.push({ spool: entry.name, ...cut });
      continue;
    }
    await removeSpool(dir);
    removed.push(entry.name);
  }
  return { removed, repaired };
}
