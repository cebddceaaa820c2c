// Bot audio playback: a bounded ring buffer read by the audio thread, gapless across
// chunks because the reader never waits for the network, it just plays what is queued.
//
// Messages from the main thread:
//   {type: "pcm", turn, rate, pcm: ArrayBuffer}  PCM16 LE mono at `rate` for reply `turn`;
//        converted to float and resampled to the context rate here, off the main thread.
//   {type: "clear", turn}  barge-in: drop every queued sample of replies <= turn at once
//        (turn null: drop everything). Replies are queued in turn order, so that is a
//        prefix of the queue.
// Messages to the main thread:
//   {type: "stats", played, buffered, overflow}  every ~50 ms while anything changes;
//        `played` counts samples (context rate) taken from the buffer since the start.
//   {type: "drained", played}  the buffer ran dry after playing something.
//   {type: "cleared", turn, dropped, played}  answer to "clear"; `dropped` in samples.

import { StreamResampler } from "./resampler.js";

const STATS_EVERY_BLOCKS = 16; // 16 x 128 frames ~ 46 ms at 44.1 kHz

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    const capacitySeconds = opts.capacitySeconds || 60;
    this.ring = new Float32Array(Math.ceil(sampleRate * capacitySeconds));
    this.readPos = 0; // cumulative sample counts; ring index = pos % capacity
    this.writePos = 0;
    this.segments = []; // [{turn, end}] in write order, end = writePos after its last sample
    this.resampler = null;
    this.streamTurn = null;
    this.streamRate = 0;
    this.scratch = new Float32Array(0);
    this.played = 0;
    this.overflow = 0; // samples refused because the ring was full
    this.playing = false;
    this.blocks = 0;
    this.reported = "";
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "pcm") this.enqueue(message.turn, message.rate, message.pcm);
    else if (message.type === "clear") this.clear(message.turn);
  }

  enqueue(turn, rate, buffer) {
    if (turn !== this.streamTurn || rate !== this.streamRate) {
      this.resampler = new StreamResampler(rate, sampleRate);
      this.streamTurn = turn;
      this.streamRate = rate;
    }
    const view = new DataView(buffer);
    const count = buffer.byteLength >> 1;
    if (this.scratch.length < count) this.scratch = new Float32Array(count);
    const input = this.scratch.subarray(0, count);
    for (let i = 0; i < count; i++) input[i] = view.getInt16(i * 2, true) / 32768;
    const samples = this.resampler.process(input);
    const capacity = this.ring.length;
    const room = capacity - (this.writePos - this.readPos);
    const n = Math.min(samples.length, room);
    this.overflow += samples.length - n;
    const start = this.writePos % capacity;
    const firstPart = Math.min(n, capacity - start);
    this.ring.set(samples.subarray(0, firstPart), start);
    this.ring.set(samples.subarray(firstPart, n), 0);
    this.writePos += n;
    const last = this.segments[this.segments.length - 1];
    if (last && last.turn === turn) last.end = this.writePos;
    else this.segments.push({ turn, end: this.writePos });
  }

  clear(turn) {
    const doomed = (segment) => turn === null || segment.turn <= turn;
    let cut = this.readPos;
    for (const segment of this.segments) if (doomed(segment)) cut = Math.max(cut, segment.end);
    const dropped = cut - this.readPos;
    this.readPos = cut;
    this.segments = this.segments.filter((s) => s.end > cut && !doomed(s));
    if (this.streamTurn !== null && (turn === null || this.streamTurn <= turn)) {
      this.streamTurn = null; // the next chunk starts a fresh resampler
    }
    this.playing = false;
    this.port.postMessage({ type: "cleared", turn, dropped, played: this.played });
    this.report();
  }

  process(inputs, outputs) {
    const channels = outputs[0];
    const frames = channels[0].length;
    const capacity = this.ring.length;
    const n = Math.min(frames, this.writePos - this.readPos);
    const start = this.readPos % capacity;
    const firstPart = Math.min(n, capacity - start);
    const out = channels[0];
    out.set(this.ring.subarray(start, start + firstPart), 0);
    out.set(this.ring.subarray(0, n - firstPart), firstPart);
    out.fill(0, n); // outputs start zeroed, but say so rather than rely on it
    for (let c = 1; c < channels.length; c++) channels[c].set(out);
    this.readPos += n;
    this.played += n;
    while (this.segments.length > 0 && this.segments[0].end <= this.readPos) this.segments.shift();
    if (n > 0) this.playing = true;
    if (this.playing && this.readPos === this.writePos) {
      this.playing = false;
      this.port.postMessage({ type: "drained", played: this.played });
      this.report();
    }
    this.blocks += 1;
    if (this.blocks % STATS_EVERY_BLOCKS === 0) this.report();
    return true;
  }

  report() {
    const buffered = this.writePos - this.readPos;
    const key = `${this.played}/${buffered}/${this.overflow}`;
    if (key === this.reported) return;
    this.reported = key;
    this.port.postMessage({ type: "stats", played: this.played, buffered, overflow: this.overflow });
  }
}

registerProcessor("framecast-playback", PlaybackProcessor);
