/**
 * The file Piscina loads in each pool thread. It is CommonJS so that the thread's own code
 * (pool/worker.ts, an ES module) is loaded by `import()`, never by `require()`.
 *
 * Piscina loads a task file with `require()` first. On Node 20.19+ that loads an ES module
 * synchronously (`require(esm)`), and a thread terminated while its module graph is being
 * instantiated that way aborts the whole process ("FATAL ERROR: v8::Module::IsGraphAsync must be
 * used on an instantiated module"): a pool that closes, or a thread ended by a stop, right after
 * Piscina started a replacement thread took the service down. `import()` of the same graph ends
 * only the thread. test/pool/thread-start.test.ts terminates threads while they load.
 */
type RunTask = typeof import('./worker.js').default;

let runTask: RunTask | undefined;
let loading: Promise<RunTask> | undefined;

function entry(task: Parameters<RunTask>[0]): ReturnType<RunTask> {
  if (runTask) return runTask(task);
  loading ??= import('./worker.js').then((m) => (runTask = m.default));
  return loading.then((run) => run(task));
}

export = entry;
