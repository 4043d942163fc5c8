// The microphone's samples, mono, in chunks of 0.1 s, posted to the page (an AudioWorklet:
// it runs on the audio thread, so a busy page drops no samples).
"use strict";

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunk = new Float32Array(Math.round(sampleRate / 10));
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels.length === 0) {
      return true;
    }
    const frames = channels[0].length;
    for (let i = 0; i < frames; i += 1) {
      let sum = 0;
      for (const channel of channels) {
        sum += channel[i];
      }
      this.chunk[this.filled] = sum / channels.length;
      this.filled += 1;
      if (this.filled === this.chunk.length) {
        this.port.postMessage(this.chunk.slice());
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("capture", Capture);
