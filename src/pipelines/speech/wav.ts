/**
 * Reads a RIFF/WAVE header: the `fmt ` chunk and where the `data` chunk lies. Chunks are walked
 * one by one (LIST, fact, bext… are skipped), never assumed to sit at byte 44.
 */
import fs from 'node:fs';

export interface WavFormat {
  /** 1 = integer PCM, 3 = IEEE float, 0xFFFE = WAVE_FORMAT_EXTENSIBLE resolved to its subformat. */
  audioFormat: number;
  channels: number;
  sampleRateHz: number;
  bitsPerSample: number;
}

export interface WavLayout {
  format: WavFormat;
  /** Byte offset of the first sample in the file. */
  dataOffset: number;
  /** Bytes of samples (clamped to the file's size; streaming writers leave 0 or 0xFFFFFFFF). */
  dataBytes: number;
}

const PCM = 1;
const EXTENSIBLE = 0xfffe;

/** Thrown for a file that says it is a WAV but is not a usable one; the message names the defect. */
export class WavError extends Error {
  override name = 'WavError';
}

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = fs.readSync(fd, buf, 0, length, offset);
  return buf.subarray(0, n);
}

/**
 * The layout of a WAV file, or null when the file is not RIFF/WAVE at all (another format sox
 * may read). Throws WavError when it is a WAV with a defect.
 */
export function readWavLayout(file: string): WavLayout | null {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const head = readAt(fd, 0, 12);
    if (head.length < 12 || head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WAVE') return null;
    let format: WavFormat | null = null;
    for (let at = 12; at + 8 <= size; ) {
      const header = readAt(fd, at, 8);
      const id = header.toString('latin1', 0, 4);
      const length = header.readUInt32LE(4);
      const body = at + 8;
      if (id === 'fmt ') {
        if (length < 16) throw new WavError(`its fmt chunk is ${length} bytes, shorter than the 16 a WAV needs`);
        format = parseFmt(readAt(fd, body, Math.min(length, 40)));
      } else if (id === 'data') {
        if (!format) throw new WavError('its data chunk comes before any fmt chunk, so the sample format is unknown');
        return { format, dataOffset: body, dataBytes: Math.min(length, size - body) };
      }
      // Chunks are padded to an even length.
      at = body + length + (length % 2);
    }
    throw new WavError(format ? 'it has no data chunk' : 'it has no fmt chunk');
  } finally {
    fs.closeSync(fd);
  }
}

function parseFmt(fmt: Buffer): WavFormat {
  let audioFormat = fmt.readUInt16LE(0);
  const channels = fmt.readUInt16LE(2);
  const sampleRateHz = fmt.readUInt32LE(4);
  const blockAlign = fmt.readUInt16LE(12);
  const bitsPerSample = fmt.readUInt16LE(14);
  if (audioFormat === EXTENSIBLE && fmt.length >= 26) audioFormat = fmt.readUInt16LE(24);
  if (channels === 0) throw new WavError('its fmt chunk says 0 channels');
  if (sampleRateHz === 0) throw new WavError('its fmt chunk says a sample rate of 0 Hz');
  if (bitsPerSample === 0) throw new WavError('its fmt chunk says 0 bits per sample');
  if (audioFormat === PCM && blockAlign !== channels * Math.ceil(bitsPerSample / 8)) {
    throw new WavError(`its fmt chunk says ${blockAlign} bytes per frame, but ${channels} channel(s) of ${bitsPerSample} bits need ${channels * Math.ceil(bitsPerSample / 8)}`);
  }
  return { audioFormat, channels, sampleRateHz, bitsPerSample };
}

/** Whether the samples can go to a recognizer as they are: PCM, mono, 16 kHz, 16-bit. */
export function isRecognizerPcm(format: WavFormat, sampleRateHz: number): boolean {
  return format.audioFormat === PCM && format.channels === 1 && format.sampleRateHz === sampleRateHz && format.bitsPerSample === 16;
}

/** A canonical 44-byte header for mono 16-bit PCM (tests and tools that wrap raw audio). */
export function wavHeader(dataBytes: number, sampleRateHz: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(PCM, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(sampleRateHz, 24);
  h.writeUInt32LE(sampleRateHz * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}
