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
import { DecoderShelf, type ShelfLimits } from './decoder-shelf.js';
import { NativeCall, nativeFunction } from './native-call.js';
import { cleanText, cleanWord, SAMPLE_RATE_HZ, type Recognizer, type RecognizerOptions, type Utterance, type Word } from './recognizer.js';

/** Where the library and model are (config.ts: POCKETSPHINX_LIBRARY, POCKETSPHINX_MODEL_DIR). */
export interface PocketsphinxSettings {
  /** A path or a soname dlopen can find. */
  library: string;
  /** Folder holding `en-us/` (the acoustic model), `en-us.lm.bin` and `cmudict-en-us.dict`. */
  modelDir: string;
  /** Loaded decoders a thread keeps for its next sessions (SPEECH_IDLE_DECODERS_PER_THREAD); default 0: none. */
  idleDecodersPerThread?: number;
  /** How long an idle one is kept, in ms (SPEECH_DECODER_IDLE_SECONDS). */
  decoderIdleMs?: number;
  /**
   * Audio, in ms, a session takes in while an utterance's final pass runs on a thread of its own
   * (SPEECH_FINAL_PASS_HOLD_MS); past it, the consumer waits for the pass. Default 0: the pass
   * runs on the consumer's thread, as in pocketsphinx_continuous.
   */
  finalPassHoldMs?: number;
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
  ps_start_stream: Fn;
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
  ps_get_feat: Fn;
  /** ps_end_utt's address, to run it on a thread of its own (native-call.ts); null where that cannot be. */
  endUttAddress: unknown;
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
    ps_start_stream: lib.func('int ps_start_stream(void *ps)'),
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
    ps_get_feat: lib.func('void *ps_get_feat(void *ps)'),
    endUttAddress: nativeFunction(library, 'ps_end_utt'),
  };
  // The decoder logs every step to stderr; a NULL log file silences it (process-wide, once).
  lib.func('void err_set_logfp(void *fp)')(null);
  bindings.set(library, b);
  return b;
}

/**
 * The head of sphinxbase's `feat_t` up to `cmn_struct`, and its `cmn_t` (sphinxbase 5prealpha,
 * feat.h and cmn.h, as Debian 12 ships them). No function of the library resets the live
 * cepstral-mean estimate to the model's initial one, so a decoder lent to a new session gets
 * it written back from a snapshot taken when the decoder was loaded (CmnSnapshot).
 */
const FeatHead = koffi.struct('tandem_sphinx_feat_head', {
  refcount: 'int',
  name: 'void *',
  cepsize: 'int32_t',
  n_stream: 'int32_t',
  stream_len: 'void *',
  window_size: 'int32_t',
  n_sv: 'int32_t',
  sv_len: 'void *',
  subvecs: 'void *',
  sv_buf: 'void *',
  sv_dim: 'int32_t',
  cmn: 'int',
  varnorm: 'int32_t',
  agc: 'int',
  compute_feat: 'void *',
  cmn_struct: 'void *',
});
const Cmn = koffi.struct('tandem_sphinx_cmn', {
  cmn_mean: 'void *',
  cmn_var: 'void *',
  sum: 'void *',
  nframe: 'int32_t',
  veclen: 'int32_t',
});

interface CmnState {
  cmn: { cmn_mean: unknown; cmn_var: unknown; sum: unknown; nframe: number; veclen: number };
  pointer: unknown;
  mean: number[];
  sum: number[];
}

/** The live CMN estimate of a decoder, or null where the structures do not look as expected. */
function readCmn(b: Binding, ps: unknown): CmnState | null {
  const feat = b.ps_get_feat(ps);
  if (!feat) return null;
  const head = koffi.decode(feat, FeatHead) as { cepsize: number; cmn_struct: unknown };
  if (!head.cmn_struct) return null;
  const cmn = koffi.decode(head.cmn_struct, Cmn) as CmnState['cmn'];
  // A sanity check on the layout: the estimate is one value per cepstral coefficient.
  if (cmn.veclen !== head.cepsize || cmn.veclen < 1 || cmn.veclen > 64 || !cmn.cmn_mean || !cmn.sum) return null;
  const floats = koffi.array('float', cmn.veclen, 'Array');
  return {
    cmn,
    pointer: head.cmn_struct,
    mean: koffi.decode(cmn.cmn_mean, floats) as number[],
    sum: koffi.decode(cmn.sum, floats) as number[],
  };
}

function writeCmn(state: CmnState): void {
  const floats = koffi.array('float', state.cmn.veclen, 'Array');
  koffi.encode(state.cmn.cmn_mean, floats, state.mean);
  koffi.encode(state.cmn.sum, floats, state.sum);
  koffi.encode(state.pointer, Cmn, state.cmn);
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

/**
 * One loaded pocketsphinx decoder: the model, and the stream state that `reset` clears so that
 * another session can use it. Used only on the thread that loaded it.
 */
export class PocketsphinxDecoder {
  readonly b: Binding;
  #config: unknown;
  ps: unknown;
  /** The CMN estimate as loaded; null when it cannot be read (then the decoder is never lent twice). */
  readonly #cmn: CmnState | null;
  #streams = 0;

  /** Loads the model: about half a second and ~100 MB. */
  constructor(settings: PocketsphinxSettings, silenceMs: number) {
    this.b = bind(settings.library);
    const files = modelFiles(settings.modelDir);
    const argv = ['-hmm', files.hmm, '-lm', files.lm, '-dict', files.dict, '-vad_postspeech', String(vadPostspeechFrames(silenceMs))];
    this.#config = this.b.cmd_ln_parse_r(null, this.b.ps_args(), argv.length, argv, 1);
    if (!this.#config) throw new Error(`pocketsphinx refused its arguments (${argv.filter((a) => a.startsWith('-')).join(' ')})`);
    this.ps = this.b.ps_init(this.#config);
    if (!this.ps) {
      this.free();
      throw new Error(`pocketsphinx could not load its model from '${settings.modelDir}'`);
    }
    this.#cmn = readCmn(this.b, this.ps);
  }

  /** Whether it can be reset for another session (its CMN estimate could be read). */
  get reusable(): boolean {
    return this.#cmn !== null;
  }

  /**
   * Starts a new stream: what a decoder carries from one utterance to the next is cleared.
   * ps_start_stream resets the front end's noise estimate (the voice-activity detector's
   * threshold); ps_start_utt, here and at every utterance, clears the hypothesis, lattice and
   * frame count (times restart at 0) and the detector's speech state. The live cepstral-mean
   * estimate, which pocketsphinx carries from utterance to utterance, is put back to the one the
   * model was loaded with, so a reused decoder hears a session exactly as a new one would.
   */
  startStream(): void {
    if (this.#streams++ > 0) {
      if (!this.#cmn) throw new Error('pocketsphinx decoder cannot be reset for another stream');
      writeCmn(this.#cmn);
    }
    if (this.b.ps_start_stream(this.ps) < 0) throw new Error('pocketsphinx could not start a stream');
    if (this.b.ps_start_utt(this.ps) < 0) throw new Error('pocketsphinx could not start an utterance');
  }

  free(): void {
    const held = Boolean(this.ps || this.#config);
    if (this.ps) this.b.ps_free(this.ps);
    if (this.#config) this.b.cmd_ln_free_r(this.#config);
    this.ps = null;
    this.#config = null;
    if (held) trimMalloc();
  }
}

/** `-vad_postspeech`: frames of 10 ms of non-speech that end an utterance. */
function vadPostspeechFrames(silenceMs: number): number {
  return Math.max(1, Math.round(silenceMs / 10));
}

/** This thread's idle decoders (decoder-shelf.ts). */
const shelf = new DecoderShelf<PocketsphinxDecoder>();

/** Decoders are interchangeable when loaded from the same files with the same cmd_ln options. */
function shelfKey(settings: PocketsphinxSettings, silenceMs: number): string {
  return JSON.stringify([settings.library, settings.modelDir, vadPostspeechFrames(silenceMs)]);
}

/** A final pass done where it was asked for: on the consumer's own thread. */
class DoneCall {
  constructor(readonly result: number) {}
  done(): boolean {
    return true;
  }
  wait(): number {
    return this.result;
  }
}

/**
 * One session's stream on a pocketsphinx decoder; see Recognizer. The decoder is borrowed from
 * this thread's shelf (loaded when none is idle) and given back, reset, by `close()`.
 *
 * An utterance's end costs one burst: `ps_end_utt` runs the second search (fwdflat) over the
 * whole utterance, ~100–250 ms of CPU for a sentence, where a 100 ms chunk costs ~11. With
 * `finalPassHoldMs` > 0 that pass runs on a native thread of its own (native-call.ts) and the
 * session goes on taking chunks meanwhile: their audio is held, in order, and fed to the
 * decoder in the same blocks once the pass returns (so the transcript is exactly what the
 * decoder would give on one thread), their results carry no partial, and the final rides on the
 * first result after the pass. Past `finalPassHoldMs` of held audio (a `fast` session outruns
 * any pass) the consumer waits for the pass. The decoder is never touched while a pass runs.
 */
export class PocketsphinxRecognizer implements Recognizer {
  readonly #b: Binding;
  readonly #words: boolean;
  readonly #key: string;
  readonly #limits: ShelfLimits;
  /** Held audio, in samples, past which the consumer waits for a running final pass; 0: passes run on this thread. */
  readonly #holdSamples: number;
  #decoder: PocketsphinxDecoder | null;
  #ps: unknown;
  /** Speech was heard since the open utterance began. */
  #heard = false;
  /** An utterance was started and not ended. */
  #uttOpen = false;
  /** The final pass of the utterance that just ended, while it runs (or has not been collected). */
  #pass: NativeCall | DoneCall | null = null;
  /** Audio taken in and not yet fed to the decoder (only while a pass runs), in order. */
  readonly #held: Int16Array[] = [];
  #heldSamples = 0;
  /** A pocketsphinx call failed: the decoder's state is unknown, so it is freed, not lent again. */
  #broken = false;
  #state: 'OPEN' | 'FINISHED' | 'CLOSED' = 'OPEN';

  /** Borrows a decoder (or loads one: about half a second) and opens the first utterance. */
  constructor(settings: PocketsphinxSettings, options: RecognizerOptions) {
    this.#words = options.words;
    this.#key = shelfKey(settings, options.silenceMs);
    this.#limits = { perThread: settings.idleDecodersPerThread ?? 0, idleMs: settings.decoderIdleMs ?? 0 };
    this.#decoder = shelf.borrow(this.#key, () => new PocketsphinxDecoder(settings, options.silenceMs));
    this.#b = this.#decoder.b;
    this.#ps = this.#decoder.ps;
    this.#holdSamples = this.#b.endUttAddress ? Math.round(((settings.finalPassHoldMs ?? 0) * SAMPLE_RATE_HZ) / 1000) : 0;
    try {
      this.#decoder.startStream();
      this.#uttOpen = true;
    } catch (err) {
      this.#broken = true;
      this.close();
      throw err;
    }
  }

  accept(pcm: Int16Array): Utterance[] {
    if (this.#state !== 'OPEN') throw new Error(`accept() after ${this.#state === 'FINISHED' ? 'finish()' : 'close()'}`);
    if (pcm.length > 0) {
      this.#held.push(pcm);
      this.#heldSamples += pcm.length;
    }
    return this.#decodeHeld(false);
  }

  completing(): boolean {
    return this.#pass !== null;
  }

  partial(): string | null {
    if (this.#state !== 'OPEN' || !this.#heard || this.#pass) return null;
    return cleanText(this.#b.ps_get_hyp(this.#ps, [0]) as string | null);
  }

  finish(): Utterance[] {
    if (this.#state !== 'OPEN') return [];
    const finals = this.#decodeHeld(true);
    this.#state = 'FINISHED';
    if (this.#heard) {
      this.#heard = false;
      this.#uttOpen = false;
      this.#pass = new DoneCall(this.#b.ps_end_utt(this.#ps) as number);
      return [...finals, ...this.#passEnded(false)];
    }
    this.#uttOpen = false;
    this.#b.ps_end_utt(this.#ps);
    return finals;
  }

  /**
   * Gives the decoder back to the shelf, or frees it after a failure. A final pass still running
   * is waited for first. An utterance still open (a STOP in mid-speech) is ended and its
   * hypothesis dropped: the decoder goes back idle, and the next session's
   * ps_start_stream/ps_start_utt start it afresh.
   */
  close(): void {
    this.#state = 'CLOSED';
    const decoder = this.#decoder;
    if (!decoder) return;
    this.#decoder = null;
    this.#ps = null;
    this.#held.length = 0;
    if (this.#pass) {
      try {
        if (this.#pass.wait() < 0) this.#broken = true;
      } catch {
        this.#broken = true;
      }
      this.#pass = null;
    }
    if (!this.#broken && this.#uttOpen) {
      this.#uttOpen = false;
      if (this.#b.ps_end_utt(decoder.ps) < 0) this.#broken = true;
    }
    if (this.#broken || !decoder.reusable) shelf.discard(decoder);
    else shelf.giveBack(this.#key, decoder, this.#limits);
  }

  /**
   * Feeds the held audio, in blocks of BLOCK_SAMPLES cut from each piece as it came, until it is
   * all fed or an utterance ends in it; then that utterance's final pass is started and the rest
   * stays held. A pass under way is collected when it has returned, or waited for when `wait`
   * (or when more than the hold limit is held).
   */
  #decodeHeld(wait: boolean): Utterance[] {
    const finals: Utterance[] = [];
    for (;;) {
      if (this.#pass) {
        if (!wait && this.#heldSamples <= this.#holdSamples && !this.#pass.done()) return finals;
        finals.push(...this.#passEnded(true));
      }
      const pcm = this.#held.shift();
      if (!pcm) return finals;
      this.#heldSamples -= pcm.length;
      for (let at = 0; at < pcm.length; at += BLOCK_SAMPLES) {
        const block = pcm.subarray(at, at + BLOCK_SAMPLES);
        if (this.#b.ps_process_raw(this.#ps, block, block.length, 0, 0) < 0) this.#fail('pocketsphinx failed to process audio');
        if (this.#b.ps_get_in_speech(this.#ps)) this.#heard = true;
        else if (this.#heard) {
          this.#startPass();
          const rest = pcm.subarray(at + BLOCK_SAMPLES);
          if (rest.length > 0) {
            this.#held.unshift(rest);
            this.#heldSamples += rest.length;
          }
          break;
        }
      }
    }
  }

  #fail(message: string): never {
    this.#broken = true;
    throw new Error(message);
  }

  /** Ends the open utterance: its final pass starts, on a thread of its own when allowed. */
  #startPass(): void {
    this.#heard = false;
    this.#uttOpen = false;
    if (this.#holdSamples > 0) {
      try {
        this.#pass = NativeCall.start(this.#b.endUttAddress, this.#ps);
        return;
      } catch {
        // No thread could be started: the pass runs here, as it would with no hold.
      }
    }
    this.#pass = new DoneCall(this.#b.ps_end_utt(this.#ps) as number);
  }

  /** The utterance whose final pass returned (waiting for it), and the next one opened when `reopen`. */
  #passEnded(reopen: boolean): Utterance[] {
    const rc = this.#pass!.wait();
    this.#pass = null;
    if (rc < 0) this.#fail('pocketsphinx failed to end an utterance');
    const finals = this.#utterance();
    if (reopen) {
      if (this.#b.ps_start_utt(this.#ps) < 0) this.#fail('pocketsphinx could not start an utterance');
      this.#uttOpen = true;
    }
    return finals;
  }

  /** The utterance the decoder just ended (none when it heard no word). */
  #utterance(): Utterance[] {
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
