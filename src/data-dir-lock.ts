import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * One instance per DATA_DIR. Start-up recovery deletes every spool it finds without a keep
 * marker, so a second instance on the same folder would destroy the live spools of the first.
 *
 * Node has no flock(2), so the lock is a file, `DATA_DIR/tandem.lock`, created with O_EXCL and
 * holding who took it: pid, a random instance id, the start time, and — on Linux — the boot id,
 * the pid namespace and the process's start time in clock ticks (field 22 of /proc/<pid>/stat).
 *
 * A lock survives `kill -9` of its holder as a file, so a later start must tell a dead holder
 * from a live one. The rule (`holderAlive`):
 * - same boot and same pid namespace as us: the holder lives iff /proc/<pid>/stat exists AND its
 *   start time is the recorded one. This is exact: a reused pid has another start time.
 * - another boot id: the machine rebooted since, the holder is dead.
 * - same boot, another pid namespace (another container sharing the volume): its pid means
 *   nothing here, so it is held to be alive; the operator removes the file after checking.
 * - no /proc (not Linux): `process.kill(pid, 0)`; ESRCH means dead. Limit: a pid reused by an
 *   unrelated process keeps the lock "held" until that process ends or the file is removed.
 * A lock on a network file system shared by two machines is not detected as live or dead by
 * any of these; do not share DATA_DIR between machines.
 *
 * Taking over a dead holder's lock: rename it aside to a name of our own (atomic: exactly one
 * starter gets any given file), check that what we moved is the very file we judged (same inode;
 * its content and inode were read through one descriptor), delete it, then create ours with
 * O_EXCL again. If what we moved is a fresh lock another starter created meanwhile, it is linked
 * back (link(2) fails rather than overwrite) and we refuse to start. Only a third starter creating
 * a lock in the instant between the move and the link back could then run beside the second.
 */
export const LOCK_FILE = 'tandem.lock';

export interface LockHolder {
  pid: number;
  instanceId: string;
  startedAt: string;
  hostname: string;
  bootId: string | null;
  pidNamespace: string | null;
  /** Start time of the holder process, in clock ticks since boot (/proc/<pid>/stat field 22). */
  processStartTicks: string | null;
}

/** Another live instance holds DATA_DIR. */
export class DataDirLockedError extends Error {
  readonly holder: LockHolder | null;
  readonly lockPath: string;

  constructor(dataDir: string, lockPath: string, holder: LockHolder | null) {
    const who = holder
      ? `pid ${holder.pid} on ${holder.hostname}, instance ${holder.instanceId}, started ${holder.startedAt}`
      : 'an instance whose lock file cannot be read';
    super(
      `DATA_DIR ${dataDir} is in use by another tandem (${who}); ` +
        `stop it, or give this one another DATA_DIR. If you are sure no other instance uses it, remove ${lockPath}`,
    );
    this.name = 'DataDirLockedError';
    this.holder = holder;
    this.lockPath = lockPath;
  }
}

export interface DataDirLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Removes the lock file if it is still ours. Safe to call twice. */
  release(): Promise<void>;
}

/**
 * Takes DATA_DIR for this process (creating the folder), taking over a lock left by a dead holder.
 * @throws DataDirLockedError when a live instance holds it.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await fs.promises.mkdir(dataDir, { recursive: true });
  const lockPath = path.join(dataDir, LOCK_FILE);
  const me: LockHolder = { ...describeSelf(), instanceId: randomUUID(), startedAt: new Date().toISOString() };
  const content = JSON.stringify(me);
  // A round may find a dead holder's lock and remove it; the next one creates ours.
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createExclusive(lockPath, content)) return heldLock(lockPath, me);
    const lock = await readLock(lockPath);
    if (lock === 'gone') continue;
    const found = lock.holder;
    if (found !== null && holderAlive(found)) throw new DataDirLockedError(dataDir, lockPath, found);
    if (found === null && Date.now() - lock.mtimeMs < UNREADABLE_GRACE_MS) {
      // Being written by a starter that just created it: give it the benefit of the doubt.
      throw new DataDirLockedError(dataDir, lockPath, null);
    }
    if (!(await removeDeadLock(lockPath, lock.ino))) throw new DataDirLockedError(dataDir, lockPath, found);
  }
  throw new DataDirLockedError(dataDir, lockPath, null);
}

/** A lock file that cannot be parsed and is older than this is a torn write of a dead holder. */
const UNREADABLE_GRACE_MS = 5000;

async function createExclusive(lockPath: string, content: string): Promise<boolean> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(lockPath, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

function heldLock(lockPath: string, me: LockHolder): DataDirLock {
  let released: Promise<void> | null = null;
  return {
    path: lockPath,
    holder: me,
    release() {
      released ??= (async () => {
        const now = await readLock(lockPath);
        // Never remove a lock that an operator handed to another instance meanwhile.
        if (now !== 'gone' && now.holder?.instanceId === me.instanceId) {
          await fs.promises.unlink(lockPath).catch(() => {});
        }
      })();
      return released;
    },
  };
}

interface LockFile {
  /** Who holds it; null when its content cannot be parsed. */
  holder: LockHolder | null;
  ino: number;
  mtimeMs: number;
}

/** The lock file's holder and identity, read through one descriptor; 'gone' when there is none. */
async function readLock(lockPath: string): Promise<LockFile | 'gone'> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(lockPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  try {
    const [st, text] = await Promise.all([handle.stat(), handle.readFile('utf8')]);
    return { holder: parseHolder(text), ino: st.ino, mtimeMs: st.mtimeMs };
  } finally {
    await handle.close();
  }
}

function parseHolder(text: string): LockHolder | null {
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    if (typeof parsed.pid !== 'number' || typeof parsed.instanceId !== 'string') return null;
    return {
      pid: parsed.pid,
      instanceId: parsed.instanceId,
      startedAt: String(parsed.startedAt ?? '?'),
      hostname: String(parsed.hostname ?? '?'),
      bootId: parsed.bootId ?? null,
      pidNamespace: parsed.pidNamespace ?? null,
      processStartTicks: parsed.processStartTicks ?? null,
    };
  } catch {
    return null;
  }
}

/**
 * Moves the lock aside and deletes it if it is the file we judged dead (inode `judgedIno`).
 * Returns false when what we moved was someone else's fresh lock (put back).
 */
async function removeDeadLock(lockPath: string, judgedIno: number): Promise<boolean> {
  const aside = `${lockPath}.stale-${randomUUID()}`;
  try {
    await fs.promises.rename(lockPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true; // another starter removed it: race for O_EXCL
    throw err;
  }
  const moved = await fs.promises.stat(aside).catch(() => null);
  if (moved?.ino !== judgedIno) {
    await fs.promises.link(aside, lockPath).catch(() => {});
    await fs.promises.unlink(aside).catch(() => {});
    return false;
  }
  await fs.promises.unlink(aside).catch(() => {});
  return true;
}

/** Whether the process recorded in a lock may still be running (see the rule at the top). */
export function holderAlive(holder: LockHolder): boolean {
  const self = describeSelf();
  if (self.bootId !== null && holder.bootId !== null) {
    if (holder.bootId !== self.bootId) return false;
    if (holder.pidNamespace !== self.pidNamespace) return true;
    const ticks = processStartTicks(holder.pid);
    return ticks !== null && ticks === holder.processStartTicks;
  }
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

type ProcessFacts = Omit<LockHolder, 'instanceId' | 'startedAt'>;
let selfDescription: ProcessFacts | null = null;

/** What identifies this process (the same for every app it runs). */
function describeSelf(): ProcessFacts {
  selfDescription ??= {
    pid: process.pid,
    hostname: os.hostname(),
    bootId: readTrimmed('/proc/sys/kernel/random/boot_id'),
    pidNamespace: linkTarget('/proc/self/ns/pid'),
    processStartTicks: processStartTicks(process.pid),
  };
  return selfDescription;
}

/** Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces, so split after its ')'. */
function processStartTicks(pid: number): string | null {
  const stat = readTrimmed(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null;
}

function readTrimmed(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function linkTarget(file: string): string | null {
  try {
    return fs.readlinkSync(file);
  } catch {
    return null;
  }
}
