import type { ChunkRecord, ResultRecord } from '../pool/messages.js';

/** Slots a queue starts with, and returns to when it empties after growing past QUEUE_SHRINK_ABOVE. */
const QUEUE_INITIAL_SLOTS = 4;
const QUEUE_SHRINK_ABOVE = 64;

/**
 * A FIFO of records with consecutive seqs, indexable by seq: a ring of slots that doubles when
 * full. Most queues hold one record for one turn (a step's chunk until its result is in), so the
 * slots are kept between deliveries: an array emptied with `length = 0` or replaced by `[]` lost
 * its backing store, and the next push allocated a new one (17 slots) for every record delivered.
 */
class SeqQueue<T extends { seq: number }> {
  #slots: Array<T | undefined> = emptySlots(QUEUE_INITIAL_SLOTS);
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#slots.length) this.#grow();
    this.#slots[(this.#head + this.#length) & (this.#slots.length - 1)] = item;
    this.#length++;
  }

  peek(): T | undefined {
    return this.#length > 0 ? this.#slots[this.#head] : undefined;
  }

  /** The item with this seq, if queued (items are consecutive from the head's seq). */
  at(seq: number): T | undefined {
    const head = this.peek();
    if (!head) return undefined;
    const k = seq - head.seq;
    if (k < 0 || k >= this.#length) return undefined;
    const item = this.#slots[(this.#head + k) & (this.#slots.length - 1)];
    return item?.seq === seq ? item : undefined;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#slots[this.#head];
    this.#slots[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#slots.length - 1);
    this.#length--;
    if (this.#length === 0) {
      this.#head = 0;
      // A backlog (a client that could not take results) is over: give its slots back.
      if (this.#slots.length > QUEUE_SHRINK_ABOVE) this.#slots = emptySlots(QUEUE_INITIAL_SLOTS);
    }
    return item;
  }

  clear(): void {
    this.#slots = emptySlots(QUEUE_INITIAL_SLOTS);
    this.#head = 0;
    this.#length = 0;
  }

  #grow(): void {
    const next = emptySlots<T>(this.#slots.length * 2);
    for (let i = 0; i < this.#length; i++) next[i] = this.#slots[(this.#head + i) & (this.#slots.length - 1)];
    this.#slots = next;
    this.#head = 0;
  }
}

/** `n` empty slots (a power of two, for the ring's mask). */
function emptySlots<T>(n: number): Array<T | undefined> {
  return new Array<T | undefined>(n).fill(undefined);
}

/** A result ready to send: the chunk's and the consumer's records of one seq. */
export interface Deliverable {
  chunk: ChunkRecord;
  result: ResultRecord;
}

/**
 * A session's sequence numbers, owned here and nowhere else: what was produced, consumed and
 * delivered, what is on disk waiting, what is next to send, and whether the session is complete.
 *
 * Chunks arrive in seq order from the producer and results in seq order from the consumer, but
 * the two streams interleave freely (a loop consumer's result may arrive before the record of
 * its chunk). A result is delivered once both records of its seq are known, strictly in order.
 */
export class SessionSequence {
  /** Last seq written, and the bytes of all chunks written. */
  produced = 0;
  bytesProduced = 0;
  /** Results the consumer returned. */
  consumed = 0;
  /** Last seq sent to a client: 1…delivered went out, in order, each once. */
  delivered = 0;
  /** Chunks (and their bytes) on disk that the consumer has not finished yet. */
  spooledChunks = 0;
  spooledBytes = 0;
  /** Highest seq of a result received from the consumer. */
  lastResultSeq = 0;
  /** The producer will write nothing after this seq (null while it may). */
  producerLastSeq: number | null = null;
  /** A loop consumer returned by itself after emitting this seq. */
  consumerLastSeq: number | null = null;
  readonly #chunks = new SeqQueue<ChunkRecord>();
  readonly #results = new SeqQueue<ResultRecord>();

  addChunk(c: ChunkRecord): void {
    this.#chunks.push(c);
    if (c.seq > this.produced) this.produced = c.seq;
    this.bytesProduced += c.sizeBytes;
    // A loop consumer's result can arrive before the chunk's record: that chunk is already done.
    if (c.seq > this.lastResultSeq) {
      this.spooledChunks++;
      this.spooledBytes += c.sizeBytes;
    }
  }

  addResult(r: ResultRecord): void {
    this.#results.push(r);
    this.consumed++;
    if (r.seq > this.lastResultSeq) this.lastResultSeq = r.seq;
    // The consumer is done with the chunk: it no longer counts against the quota (a chunk whose
    // record has not arrived yet was never counted: see addChunk).
    const chunk = this.#chunks.at(r.seq);
    if (chunk) {
      this.spooledChunks--;
      this.spooledBytes -= chunk.sizeBytes;
    }
  }

  /**
   * A resident's quiet steps (pool/quiet-steps.ts) wrote `chunks` chunks of `bytes` bytes, and
   * their results were consumed and sent by its step thread, every seq up to `lastSeq`: nothing of
   * them waits in the queues. They follow what was delivered: a quiet step runs only once every
   * result before it was sent.
   */
  passQuiet(lastSeq: number, chunks: number, bytes: number): void {
    if (this.#chunks.length > 0 || this.#results.length > 0 || lastSeq - chunks !== this.delivered) {
      throw new Error(`quiet steps through seq ${lastSeq} (${chunks} chunks) do not follow seq ${this.delivered}, the last delivered, with nothing queued`);
    }
    this.produced = lastSeq;
    this.bytesProduced += bytes;
    this.consumed += chunks;
    this.lastResultSeq = lastSeq;
    this.delivered = lastSeq;
  }

  /** The next result to send, taken off the queues (null until both its records are in). */
  takeNext(): Deliverable | null {
    const chunk = this.#chunks.peek();
    const result = this.#results.peek();
    if (!chunk || !result || chunk.seq !== this.delivered + 1 || result.seq !== chunk.seq) return null;
    this.#chunks.shift();
    this.#results.shift();
    this.delivered = chunk.seq;
    return { chunk, result };
  }

  /** Everything the producer wrote (or a returned loop consumer emitted) was delivered. */
  get complete(): boolean {
    return (
      (this.producerLastSeq !== null && this.delivered >= this.producerLastSeq) ||
      (this.consumerLastSeq !== null && this.delivered >= this.consumerLastSeq)
    );
  }

  /** Whether every chunk and result a returned loop side posted (up to these seqs) has arrived. */
  caughtUp(producerPosted: number | null, consumerPosted: number | null): boolean {
    return (producerPosted === null || this.produced >= producerPosted) && (consumerPosted === null || this.lastResultSeq >= consumerPosted);
  }

  /** Chunks written but not delivered, and when the oldest of them was written (epoch ms, 0 = none). */
  lag(): { chunks: number; oldestAt: number } {
    const chunks = Math.max(0, this.produced - this.delivered);
    const oldest = this.#chunks.peek();
    return { chunks, oldestAt: chunks > 0 && oldest ? oldest.producedAt : 0 };
  }

  /** Drops what waits to be sent: the session ended. */
  clear(): void {
    this.#chunks.clear();
    this.#results.clear();
  }
}
