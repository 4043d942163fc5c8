// The page: a model picker, "Listen" (the microphone) and "Drop a file", both streamed over
// /ws into the server's ClassifyAudioStream path; the answers drawn as they come.
// Plain JavaScript, no build step. Audio is resampled by the browser to the model's own rate
// (an AudioContext at that rate), so the server scores exactly what it was sent.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const CHUNK_SECONDS = 0.25; // a file's frames; the microphone's are 0.1 s (capture.js)
const MAX_BUFFERED = 1 << 20; // bytes queued on the socket before a fast file waits
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
  "#ff9da7", "#9c755f", "#17becf", "#1f77b4", "#d62728"]; // no grey: grey is "abstained"

let models = [];
let current = null; // the running source: {stop(), session}
const latencies = [];

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function loadModels() {
  const response = await fetch("/api/models", { headers: authHeaders() });
  const body = await response.json();
  if (!response.ok) {
    $("token-label").hidden = false;
    setStatus(`${body.status}: ${body.message}. Enter a token.`, true);
    return false;
  }
  models = body.models.filter((m) => m.kind === "AUDIO" && m.is_default);
  const select = $("model");
  select.replaceChildren(...models.map((m) => new Option(`${m.model.name} (v${m.model.version})`,
    m.model.name)));
  const wanted = params.get("model");
  if (wanted && models.some((m) => m.model.name === wanted)) {
    select.value = wanted;
  }
  if (!models.length) {
    setStatus("This server has no audio model.", true);
    return false;
  }
  drawLegend();
  return true;
}

function chosenModel() {
  return models.find((m) => m.model.name === $("model").value);
}

function colourOf(genre) {
  const labels = chosenModel() ? chosenModel().labels : [];
  const index = labels.indexOf(genre);
  return PALETTE[(index < 0 ? labels.length : index) % PALETTE.length];
}

function drawLegend() {
  const model = chosenModel();
  $("legend").replaceChildren(...(model ? model.labels : []).map((genre) => {
    const chip = document.createElement("span");
    chip.textContent = genre;
    chip.style.setProperty("--colour", colourOf(genre));
    return chip;
  }));
}

// One stream on the socket: config first (with the token, if any), PCM frames, then "end".
class Session {
  constructor(model, sampleRate) {
    this.closed = false;
    this.socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    this.socket.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.socket.onopen = () => {
        const config = {
          type: "config",
          model: { name: model.model.name },
          sample_rate: sampleRate,
          encoding: "PCM_F32LE",
          channels: 1,
          top_k: 5,
        };
        const token = $("token").value.trim();
        if (token) {
          config.token = token;
        }
        this.socket.send(JSON.stringify(config));
        resolve();
      };
      this.socket.onerror = () => reject(new Error("the WebSocket could not connect"));
    });
    this.socket.onmessage = (event) => render(JSON.parse(event.data));
    this.socket.onclose = (event) => {
      this.closed = true;
      if (event.code !== 1000 && !$("status").classList.contains("error")) {
        setStatus(`The stream closed (code ${event.code}).`, true);
      }
      finished(this);
    };
  }

  send(samples) {
    if (!this.closed && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(samples);
    }
  }

  end() {
    if (!this.closed && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "end" }));
    }
  }
}

function reset() {
  latencies.length = 0;
  $("timeline").replaceChildren();
  $("latency-strip").replaceChildren();
  $("chart").replaceChildren();
  $("track-genre").textContent = "…";
  $("track-genre").removeAttribute("data-abstention");
  $("track-probability").textContent = "";
  $("window-count").dataset.count = "0";
  $("window-count").textContent = "0 windows";
  $("latency").textContent = "—";
}

function running(source) {
  current = source;
  $("listen").disabled = true;
  $("file").disabled = true;
  $("stop").disabled = false;
}

function finished(session) {
  if (current && current.session === session) {
    const source = current;
    current = null;
    source.release(); // the microphone goes off once its stream is over, whatever ended it
    $("listen").disabled = false;
    $("file").disabled = false;
    $("stop").disabled = true;
  }
}

async function listen() {
  const model = chosenModel();
  if (!model || current) {
    return;
  }
  reset();
  setStatus("Asking for the microphone…");
  try {
    const media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
        autoGainControl: false },
    });
    let context;
    try {
      context = new AudioContext({ sampleRate: model.audio.sample_rate });
    } catch {
      context = new AudioContext(); // the server resamples what the browser could not
    }
    await context.audioWorklet.addModule("/static/capture.js");
    const source = context.createMediaStreamSource(media);
    const capture = new AudioWorkletNode(context, "capture", {
      channelCount: 1, channelCountMode: "explicit",
    });
    const silent = new GainNode(context, { gain: 0 }); // keeps the graph pulled, plays nothing
    source.connect(capture).connect(silent).connect(context.destination);
    const session = new Session(model, context.sampleRate);
    capture.port.onmessage = (event) => session.send(event.data);
    const release = () => {
      media.getTracks().forEach((track) => track.stop());
      if (context.state !== "closed") {
        context.close();
      }
    };
    running({
      session,
      release,
      stop() {
        release();
        session.end();
      },
    });
    await session.opened;
    await context.resume();
    setStatus(`Listening at ${context.sampleRate} Hz…`);
  } catch (error) {
    setStatus(`Cannot listen: ${error.message}`, true);
    if (current) {
      current.stop();
    }
  }
}

function mono(buffer) {
  const out = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c += 1) {
    const channel = buffer.getChannelData(c);
    for (let i = 0; i < out.length; i += 1) {
      out[i] += channel[i] / buffer.numberOfChannels;
    }
  }
  return out;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

async function streamFile(file) {
  const model = chosenModel();
  if (!model || current || !file) {
    return;
  }
  reset();
  const rate = model.audio.sample_rate;
  setStatus(`Decoding ${file.name}…`);
  let samples;
  try {
    // decodeAudioData resamples to its context's rate: the model's.
    const decoded = await new OfflineAudioContext(1, 1, rate).decodeAudioData(await file.arrayBuffer());
    samples = mono(decoded);
  } catch (error) {
    setStatus(`Cannot decode ${file.name}: ${error.message}`, true);
    return;
  }
  const pace = Number($("pace").value);
  const session = new Session(model, rate);
  let stopped = false;
  running({ session, release() {}, stop() { stopped = true; } });
  try {
    await session.opened;
  } catch (error) {
    setStatus(error.message, true);
    return;
  }
  setStatus(`Streaming ${file.name} (${(samples.length / rate).toFixed(1)} s)…`);
  const step = Math.round(rate * CHUNK_SECONDS);
  const started = performance.now();
  for (let i = 0; i < samples.length && !stopped && !session.closed; i += step) {
    session.send(samples.subarray(i, i + step));
    if (pace > 0) {
      await sleep(started + ((i + step) / rate / pace) * 1000 - performance.now());
    }
    while (session.socket.bufferedAmount > MAX_BUFFERED && !session.closed) {
      await sleep(20);
    }
  }
  session.end();
}

function drawChart(scores) {
  $("chart").replaceChildren(...scores.map(({ genre, probability }) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.dataset.genre = genre;
    const name = document.createElement("span");
    name.textContent = genre;
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(probability * 100).toFixed(1)}%`;
    fill.style.background = colourOf(genre);
    const value = document.createElement("span");
    value.textContent = probability.toFixed(2);
    row.append(name, fill, value);
    return row;
  }));
}

function drawTrack(message) {
  const element = $("track-genre");
  const top = message.track[0];
  if (message.track_abstention !== "answered") {
    element.textContent = message.track_abstention.replace("_", " ");
    element.dataset.abstention = message.track_abstention;
    $("track-probability").textContent = "";
  } else if (top) {
    element.textContent = top.genre;
    element.removeAttribute("data-abstention");
    $("track-probability").textContent = `${(top.probability * 100).toFixed(0)}%`;
  }
  element.style.color = top ? colourOf(top.genre) : "";
}

function drawWindow(message) {
  const top = message.window[0];
  const block = document.createElement("span");
  const abstains = message.window_abstention !== "answered";
  block.style.background = abstains || !top ? "#ccc" : colourOf(top.genre);
  block.title = `${message.window_start.toFixed(1)}–${message.window_end.toFixed(1)} s: ` +
    (abstains ? message.window_abstention : `${top.genre} ${top.probability.toFixed(2)}`);
  $("timeline").append(block);
  $("window-range").textContent =
    `${message.window_start.toFixed(1)}–${message.window_end.toFixed(1)} s` +
    (abstains ? ` (${message.window_abstention.replace("_", " ")})` : "");
  const count = $("timeline").childElementCount;
  $("window-count").dataset.count = String(count);
  $("window-count").textContent = `${count} window${count === 1 ? "" : "s"}`;
}

function drawLatency(ms) {
  latencies.push(ms);
  const sorted = [...latencies].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  $("latency").textContent = `last ${ms.toFixed(0)} ms, median ${median.toFixed(0)} ms`;
  const bar = document.createElement("span");
  bar.style.height = `${Math.min(100, ms / 5)}%`; // 500 ms fills the strip
  bar.title = `${ms.toFixed(1)} ms`;
  $("latency-strip").append(bar);
}

function render(message) {
  if (message.type === "window") {
    drawChart(message.window);
    drawTrack(message);
    drawWindow(message);
    drawLatency(message.latency_ms);
    if (message.final) {
      setStatus(`Done: ${message.audio_seconds.toFixed(1)} s of audio.`);
    }
  } else if (message.type === "error") {
    setStatus(`${message.status}: ${message.message}`, true);
  }
}

function wireControls() {
  $("listen").addEventListener("click", listen);
  $("stop").addEventListener("click", () => current && current.stop());
  $("file").addEventListener("change", (event) => streamFile(event.target.files[0]));
  $("model").addEventListener("change", drawLegend);
  $("token").addEventListener("change", loadModels);
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    streamFile(event.dataTransfer.files[0]);
  });
}

async function start() {
  wireControls();
  const pace = params.get("pace"); // ?pace=0: files as fast as the server answers (tests)
  if ([...$("pace").options].some((option) => option.value === pace)) {
    $("pace").value = pace;
  }
  try {
    if ((await loadModels()) && params.get("listen") === "1") {
      await listen();
    }
  } catch (error) {
    setStatus(`Cannot reach the server: ${error.message}`, true);
  }
}

start();
