// Microphone capture: downmix -> resample to the wire rate -> PCM16 LE chunks.
//
// Runs on the audio thread so capture keeps real time even when the page's main thread
// is busy. The context rate is read from `sampleRate` (the AudioWorkletGlobalScope
// global), never assumed: headless Chromium runs at 44.1 kHz, most desktops at 48 kHz.
//
// Messages to the main thread: {type: "chunk", pcm: ArrayBuffer (transferred), rms}
// where rms is the chunk's root-mean-square level in [0, 1] (for the level meter).
// Messages from the main thread: {type: "stop"} ends processing for good.

import { StreamResampler } from "./resampler.js";

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    const targetRate = opts.targetRate || 16000;
    const chunkMs = opts.chunkMs || 40;
    this.resampler = new StreamResampler(sampleRate, targetRate);
    this.chunkSamples = Math.max(1, Math.round((targetRate * chunkMs) / 1000));
    this.newChunk();
    this.mono = new Float32Array(128);
    this.stopped = false;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "stop") this.stopped = true;
    };
  }

  newChunk() {
    this.chunk = new DataView(new ArrayBuffer(this.chunkSamples * 2));
    this.filled = 0;
    this.sumSquares = 0;
  }

  process(inputs) {
    if (this.stopped) return false;
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // no source connected (yet)
    const frames = channels[0].length;
    if (this.mono.length !== frames) this.mono = new Float32Array(frames);
    const mono = this.mono;
    mono.set(channels[0]);
    if (channels.length > 1) {
      for (let c = 1; c < channels.length; c++) {
        const channel = channels[c];
        for (let i = 0; i < frames; i++) mono[i] += channel[i];
      }
      const scale = 1 / channels.length;
      for (let i = 0; i < frames; i++) mono[i] *= scale;
    }
    const resampled = this.resampler.process(mono);
    for (let i = 0; i < resampled.length; i++) {
      const s = Math.max(-1, Math.min(1, resampled[i]));
      this.sumSquares += s * s;
      this.chunk.setInt16(this.filled * 2, Math.max(-32768, Math.min(32767, Math.round(s * 32768))), true);
      this.filled += 1;
      if (this.filled === this.chunkSamples) this.flush();
    }
    return true;
  }

  flush() {
    const rms = Math.sqrt(this.sumSquares / this.chunkSamples);
    const buffer = this.chunk.buffer;
    this.port.postMessage({ type: "chunk", pcm: buffer, rms }, [buffer]);
    this.newChunk();
  }
}

registerProcessor("framecast-capture", CaptureProcessor);
