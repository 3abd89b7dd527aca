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
 *
 * Each task name Piscina may be asked for (worker.ts's exports) is here under the same name.
 */
type Worker = typeof import('./worker.js');
type TaskName = 'default' | 'consumeLoopTask';

let loaded: Worker | undefined;
let loading: Promise<Worker> | undefined;

/** Runs worker.ts's export `name`, imported at the thread's first task. */
function forward(name: TaskName): Worker[TaskName] {
  return (task) => {
    if (loaded) return loaded[name](task);
    loading ??= import('./worker.js').then((m) => (loaded = m));
    return loading.then((m) => m[name](task));
  };
}

const entry = Object.assign(forward('default'), { consumeLoopTask: forward('consumeLoopTask') });

export = entry;
