/**
 * The built-in recognizer: CMU pocketsphinx (Debian 12's libpocketsphinx.so.3, 5prealpha API)
 * with the en-us model from `pocketsphinx-en-us`, called in-process through koffi. Each call
 * blocks the calling thread, which is the point: it runs in the consumer's own pool thread.
 *
 * Endpointing is the library's own voice-activity detector: an utterance ends when
 * `ps_get_in_speech` falls back to 0 after speech, which happens `-vad_postspeech` frames
 * (10 ms each) into a pause. That is what `pocketsphinx_continuous` does, so both agree on
 * where utterances split.
 */
import fs from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { cleanText, cleanWord, type Recognizer, type RecognizerOptions, type Utterance, type Word } from './recognizer.js';

/** Where the library and model are (config.ts: POCKETSPHINX_LIBRARY, POCKETSPHINX_MODEL_DIR). */
export interface PocketsphinxSettings {
  /** A path or a soname dlopen can find. */
  library: string;
  /** Folder holding `en-us/` (the acoustic model), `en-us.lm.bin` and `cmudict-en-us.dict`. */
  modelDir: string;
}

/** Feature frames per second (pocketsphinx's `-frate` default). */
const FRAMES_PER_SECOND = 100;
/** Samples fed per call, as pocketsphinx_continuous does, so utterances split where its do. */
const BLOCK_SAMPLES = 2048;

type Fn = koffi.KoffiFunction;

interface Binding {
  cmd_ln_parse_r: Fn;
  cmd_ln_free_r: Fn;
  ps_args: Fn;
  ps_init: Fn;
  ps_free: Fn;
  ps_start_utt: Fn;
  ps_end_utt: Fn;
  ps_process_raw: Fn;
  ps_get_hyp: Fn;
  ps_get_in_speech: Fn;
  ps_seg_iter: Fn;
  ps_seg_next: Fn;
  ps_seg_word: Fn;
  ps_seg_frames: Fn;
  ps_seg_prob: Fn;
  ps_get_logmath: Fn;
  logmath_exp: Fn;
}

/**
 * glibc's malloc_trim, or null where there is none (another libc).
 *
 * Why: a decoder is about 100 MB of small allocations (dictionary, language and acoustic
 * model), made on the consumer's pool thread and so in that thread's malloc arena. ps_free
 * gives them back to the arena, not to the system: each thread that ever held a decoder kept
 * ~100 MB resident, so 4 concurrent sessions grew the service by ~400 MB for good (the bench's
 * transcribe churn). malloc_trim(0) returns the free pages of every arena.
 */
let mallocTrim: Fn | null | undefined;
function trimMalloc(): void {
  if (mallocTrim === undefined) {
    try {
      mallocTrim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
    } catch {
      mallocTrim = null;
    }
  }
  mallocTrim?.(0);
}

/** One binding per library per thread: dlopen and symbol lookup happen once. */
const bindings = new Map<string, Binding>();

function bind(library: string): Binding {
  let b = bindings.get(library);
  if (b) return b;
  // libpocketsphinx links libsphinxbase: the sphinxbase symbols (cmd_ln_*, logmath_*, err_*)
  // are found through the same handle.
  const lib = koffi.load(library);
  b = {
    cmd_ln_parse_r: lib.func('void *cmd_ln_parse_r(void *inout, void *defn, int argc, const char **argv, int strict)'),
    cmd_ln_free_r: lib.func('int cmd_ln_free_r(void *config)'),
    ps_args: lib.func('void *ps_args()'),
    ps_init: lib.func('void *ps_init(void *config)'),
    ps_free: lib.func('int ps_free(void *ps)'),
    ps_start_utt: lib.func('int ps_start_utt(void *ps)'),
    ps_end_utt: lib.func('int ps_end_utt(void *ps)'),
    ps_process_raw: lib.func('int ps_process_raw(void *ps, const int16_t *data, size_t n_samples, int no_search, int full_utt)'),
    ps_get_hyp: lib.func('const char *ps_get_hyp(void *ps, _Out_ int32_t *out_best_score)'),
    ps_get_in_speech: lib.func('uint8_t ps_get_in_speech(void *ps)'),
    ps_seg_iter: lib.func('void *ps_seg_iter(void *ps)'),
    ps_seg_next: lib.func('void *ps_seg_next(void *seg)'),
    ps_seg_word: lib.func('const char *ps_seg_word(void *seg)'),
    ps_seg_frames: lib.func('void ps_seg_frames(void *seg, _Out_ int *out_sf, _Out_ int *out_ef)'),
    ps_seg_prob: lib.func('int32_t ps_seg_prob(void *seg, _Out_ int32_t *out_ascr, _Out_ int32_t *out_lscr, _Out_ int32_t *out_lback)'),
    ps_get_logmath: lib.func('void *ps_get_logmath(void *ps)'),
    logmath_exp: lib.func('double logmath_exp(void *lmath, int logb_x)'),
  };
  // The decoder logs every step to stderr; a NULL log file silences it (process-wide, once).
  lib.func('void err_set_logfp(void *fp)')(null);
  bindings.set(library, b);
  return b;
}

function modelFiles(modelDir: string) {
  return {
    hmm: path.join(modelDir, 'en-us'),
    lm: path.join(modelDir, 'en-us.lm.bin'),
    dict: path.join(modelDir, 'cmudict-en-us.dict'),
  };
}

/**
 * Why pocketsphinx cannot run here (library or model missing), or null when it can.
 * Cheap enough for start-up: one dlopen and a few stats; no model is loaded.
 */
export function pocketsphinxProblem(settings: PocketsphinxSettings): string | null {
  const files = modelFiles(settings.modelDir);
  for (const [what, file] of [['acoustic model', path.join(files.hmm, 'mdef')], ['language model', files.lm], ['dictionary', files.dict]] as const) {
    if (!fs.existsSync(file)) {
      // Paths quoted: a client's copy of the reason shows only their last part (src/ws/redact.ts).
      return `the pocketsphinx ${what} '${file}' is missing (install the Debian package pocketsphinx-en-us, or set POCKETSPHINX_MODEL_DIR)`;
    }
  }
  try {
    bind(settings.library);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).replaceAll(settings.library, path.basename(settings.library));
    return `the pocketsphinx library '${settings.library}' cannot be loaded (install the Debian package libpocketsphinx3, or set POCKETSPHINX_LIBRARY): ${why}`;
  }
  return null;
}

/** A pocketsphinx decoder for one session; see Recognizer. */
export class PocketsphinxRecognizer implements Recognizer {
  readonly #b: Binding;
  readonly #words: boolean;
  #config: unknown;
  #ps: unknown;
  /** Speech was heard since the open utterance began. */
  #heard = false;
  #state: 'OPEN' | 'FINISHED' | 'CLOSED' = 'OPEN';

  /** Loads the model (about half a second) and opens the first utterance. */
  constructor(settings: PocketsphinxSettings, options: RecognizerOptions) {
    this.#b = bind(settings.library);
    this.#words = options.words;
    const files = modelFiles(settings.modelDir);
    const argv = ['-hmm', files.hmm, '-lm', files.lm, '-dict', files.dict, '-vad_postspeech', String(Math.max(1, Math.round(options.silenceMs / 10)))];
    this.#config = this.#b.cmd_ln_parse_r(null, this.#b.ps_args(), argv.length, argv, 1);
    if (!this.#config) throw new Error(`pocketsphinx refused its arguments (${argv.filter((a) => a.startsWith('-')).join(' ')})`);
    this.#ps = this.#b.ps_init(this.#config);
    if (!this.#ps) {
      this.close();
      throw new Error(`pocketsphinx could not load its model from '${settings.modelDir}'`);
    }
    if (this.#b.ps_start_utt(this.#ps) < 0) {
      this.close();
      throw new Error('pocketsphinx could not start an utterance');
    }
  }

  accept(pcm: Int16Array): Utterance[] {
    if (this.#state !== 'OPEN') throw new Error(`accept() after ${this.#state === 'FINISHED' ? 'finish()' : 'close()'}`);
    const finals: Utterance[] = [];
    for (let at = 0; at < pcm.length; at += BLOCK_SAMPLES) {
      const block = pcm.subarray(at, at + BLOCK_SAMPLES);
      if (this.#b.ps_process_raw(this.#ps, block, block.length, 0, 0) < 0) throw new Error('pocketsphinx failed to process audio');
      if (this.#b.ps_get_in_speech(this.#ps)) this.#heard = true;
      else if (this.#heard) {
        finals.push(...this.#endUtterance());
        if (this.#b.ps_start_utt(this.#ps) < 0) throw new Error('pocketsphinx could not start an utterance');
      }
    }
    return finals;
  }

  partial(): string | null {
    if (this.#state !== 'OPEN' || !this.#heard) return null;
    return cleanText(this.#b.ps_get_hyp(this.#ps, [0]) as string | null);
  }

  finish(): Utterance[] {
    if (this.#state !== 'OPEN') return [];
    this.#state = 'FINISHED';
    if (this.#heard) return this.#endUtterance();
    this.#b.ps_end_utt(this.#ps);
    return [];
  }

  close(): void {
    this.#state = 'CLOSED';
    const held = Boolean(this.#ps || this.#config);
    if (this.#ps) this.#b.ps_free(this.#ps);
    if (this.#config) this.#b.cmd_ln_free_r(this.#config);
    this.#ps = null;
    this.#config = null;
    if (held) trimMalloc();
  }

  #endUtterance(): Utterance[] {
    this.#heard = false;
    if (this.#b.ps_end_utt(this.#ps) < 0) throw new Error('pocketsphinx failed to end an utterance');
    const text = cleanText(this.#b.ps_get_hyp(this.#ps, [0]) as string | null);
    if (!text) return [];
    const words = this.#segments();
    const first = words[0];
    const last = words[words.length - 1];
    const utterance: Utterance = { text, start: first?.start ?? 0, end: last?.end ?? 0 };
    if (this.#words) utterance.words = words;
    return [utterance];
  }

  /** The best path's words, fillers left out, with times from the start of the audio. */
  #segments(): Word[] {
    const b = this.#b;
    const logmath = b.ps_get_logmath(this.#ps);
    const words: Word[] = [];
    // ps_seg_next frees the iterator when it returns NULL, so the loop must run to the end.
    for (let seg = b.ps_seg_iter(this.#ps); seg; seg = b.ps_seg_next(seg)) {
      const word = cleanWord(b.ps_seg_word(seg) as string);
      if (!word) continue;
      const sf = [0];
      const ef = [0];
      b.ps_seg_frames(seg, sf, ef);
      const prob = b.ps_seg_prob(seg, [0], [0], [0]) as number;
      const conf = Math.min(1, Math.max(0, b.logmath_exp(logmath, prob) as number));
      words.push({
        word,
        start: round(sf[0]! / FRAMES_PER_SECOND),
        end: round((ef[0]! + 1) / FRAMES_PER_SECOND),
        conf: round(conf),
      });
    }
    return words;
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
