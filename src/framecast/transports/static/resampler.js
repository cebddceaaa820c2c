// Streaming mono resampler shared by both AudioWorklets (imported as an ES module).
//
// Why our own: the browser picks the AudioContext rate (44.1 kHz in headless Chromium,
// often 48 kHz elsewhere) while the wire is 16 kHz up and 24 kHz down, and audio arrives
// in small blocks, so the resampler must carry its state from one block to the next or
// every block edge clicks.
//
// Method: band-limited interpolation. Each output sample is the input convolved with a
// Blackman-windowed sinc low-pass centred on the output instant. The cutoff sits at 0.45
// of the lower of the two rates, so going down it is the anti-alias filter and going up
// it removes the images. The kernel is tabulated at KERNEL_STEPS points per input sample
// and read with linear interpolation, so no trigonometry runs per sample.

const ZERO_CROSSINGS = 8; // sinc lobes kept on each side of the centre
const CUTOFF = 0.45; // of the lower rate
const KERNEL_STEPS = 128; // table points per input sample

export class StreamResampler {
  /**
   * @param {number} inRate  input sample rate in Hz
   * @param {number} outRate output sample rate in Hz
   */
  constructor(inRate, outRate) {
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate; // input samples advanced per output sample
    const cutoff = (CUTOFF * Math.min(inRate, outRate)) / inRate; // cycles per input sample
    this.half = Math.ceil(ZERO_CROSSINGS / (2 * cutoff)); // kernel half-width, input samples
    this.table = kernelTable(cutoff, this.half);
    this.history = new Float32Array(2 * this.half); // the last inputs, oldest first
    this.work = new Float32Array(0); // history + current block, reused
    this.out = new Float32Array(0);
    this.position = 0; // next output instant, in input samples from the block start
  }

  /**
   * Resample one block. The returned array is a view into an internal buffer that the
   * next call overwrites: copy what you need before calling again.
   * @param {Float32Array} input
   * @returns {Float32Array}
   */
  process(input) {
    if (this.inRate === this.outRate) return input;
    const half = this.half;
    const keep = this.history.length;
    const length = input.length;
    const total = keep + length;
    if (this.work.length < total) this.work = new Float32Array(total);
    const work = this.work; // work[keep + k] is input sample k of this block
    work.set(this.history, 0);
    work.set(input, keep);
    const maxOut = Math.ceil((length + keep) / this.step) + 1;
    if (this.out.length < maxOut) this.out = new Float32Array(maxOut);
    const table = this.table;
    let count = 0;
    let t = this.position;
    // Sample k contributes kernel(t - k) for |t - k| < half; stop when k would run past
    // the block end, and carry the instant over to the next block.
    while (t + half < length) {
      const first = Math.floor(t) - half + 1;
      let acc = 0;
      for (let k = first; k < first + 2 * half; k++) {
        const u = Math.abs(t - k) * KERNEL_STEPS;
        const i = Math.floor(u);
        const w = table[i] + (table[i + 1] - table[i]) * (u - i);
        acc += work[keep + k] * w;
      }
      this.out[count++] = acc;
      t += this.step;
    }
    this.position = t - length;
    this.history.set(work.subarray(total - keep, total));
    return this.out.subarray(0, count);
  }
}

/** Windowed-sinc kernel at u = i / KERNEL_STEPS for u in [0, half], zero-padded by one. */
function kernelTable(cutoff, half) {
  const size = half * KERNEL_STEPS;
  const table = new Float32Array(size + 2);
  for (let i = 0; i <= size; i++) {
    const u = i / KERNEL_STEPS;
    const sinc = u === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * u) / (Math.PI * u);
    const x = (Math.PI * u) / half;
    const window = 0.42 + 0.5 * Math.cos(x) + 0.08 * Math.cos(2 * x);
    table[i] = sinc * window;
  }
  return table;
}
