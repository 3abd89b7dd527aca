/**
 * Runs one C function of one pointer argument, `int f(void *arg)`, on a native thread of its own,
 * and lets the JavaScript thread that started it poll for its end without an event loop: a loop
 * consumer blocks in `ctx.next()` between chunks, so a callback (koffi's `.async()`) would never
 * be delivered to it. glibc's pthread_create / pthread_tryjoin_np / pthread_join, through koffi.
 *
 * The function is started as the thread's start routine: on the 64-bit Linux ABIs a function
 * `int f(void *)` is called exactly as `void *f(void *)` is, and its int comes back in the low
 * 32 bits of the thread's exit value.
 *
 * Where glibc or the symbol is missing (another libc), `nativeFunction` is null and callers run
 * the function on their own thread.
 */
import koffi from 'koffi';

type Fn = koffi.KoffiFunction;

interface Pthreads {
  dlopen: Fn;
  dlsym: Fn;
  create: Fn;
  tryJoin: Fn;
  join: Fn;
}

/** RTLD_NOW: the library is already loaded (koffi.load); this only takes another reference to it. */
const RTLD_NOW = 2;
/** pthread_tryjoin_np's answer while the thread still runs. */
const EBUSY = 16;

let pthreads: Pthreads | null | undefined;

function libc(): Pthreads | null {
  if (pthreads !== undefined) return pthreads;
  try {
    const c = koffi.load('libc.so.6');
    pthreads = {
      dlopen: c.func('void *dlopen(const char *file, int mode)'),
      dlsym: c.func('void *dlsym(void *handle, const char *name)'),
      create: c.func('int pthread_create(_Out_ uint64_t *thread, void *attr, void *start, void *arg)'),
      tryJoin: c.func('int pthread_tryjoin_np(uint64_t thread, _Out_ uint64_t *retval)'),
      join: c.func('int pthread_join(uint64_t thread, _Out_ uint64_t *retval)'),
    };
  } catch {
    pthreads = null;
  }
  return pthreads;
}

/** The address of `name` in `library` (a path or soname koffi.load took), or null where it cannot be had. */
export function nativeFunction(library: string, name: string): unknown {
  const c = libc();
  if (!c) return null;
  const handle = c.dlopen(library, RTLD_NOW);
  return handle ? c.dlsym(handle, name) || null : null;
}

/** The int a thread's exit value carries. */
function exitInt(retval: unknown): number {
  return Number(BigInt.asIntN(32, BigInt(retval as number | bigint)));
}

/**
 * One call under way on its thread. Whoever started it joins it (`done()` true, or `wait()`)
 * before touching what the function works on again; a thread whose JavaScript owner is
 * terminated first runs to its end and is never joined (its stack stays mapped).
 */
export class NativeCall {
  readonly #thread: bigint | number;
  #result: number | null = null;

  private constructor(thread: bigint | number) {
    this.#thread = thread;
  }

  /** Starts `fn(arg)` on a new thread; throws when no thread can be started. */
  static start(fn: unknown, arg: unknown): NativeCall {
    const c = libc();
    if (!c || !fn) throw new Error('native threads are not available here');
    const thread: Array<bigint | number> = [0];
    const rc = c.create(thread, null, fn, arg) as number;
    if (rc !== 0) throw new Error(`pthread_create failed (${rc})`);
    return new NativeCall(thread[0]!);
  }

  /** Whether the function returned (the thread is then joined); never blocks. */
  done(): boolean {
    if (this.#result !== null) return true;
    const retval: unknown[] = [0];
    const rc = libc()!.tryJoin(this.#thread, retval) as number;
    if (rc === EBUSY) return false;
    if (rc !== 0) throw new Error(`pthread_tryjoin_np failed (${rc})`);
    this.#result = exitInt(retval[0]);
    return true;
  }

  /** Blocks until the function returned; its int. */
  wait(): number {
    if (this.#result === null) {
      const retval: unknown[] = [0];
      const rc = libc()!.join(this.#thread, retval) as number;
      if (rc !== 0) throw new Error(`pthread_join failed (${rc})`);
      this.#result = exitInt(retval[0]);
    }
    return this.#result;
  }
}
