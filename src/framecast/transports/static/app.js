// framecast browser client: speaks the /ws/audio protocol (see PROTOCOL.md).
//
// Flow: Connect (a click, so the AudioContext may start) -> WebSocket -> hello -> ready
// -> microphone -> capture worklet -> binary PCM16 16 kHz up; JSON events and binary
// PCM16 replies down -> playback worklet. The page keeps working without a microphone:
// typed messages still get spoken replies.
//
// Test hook: `window.framecast` is a read-only view of the client's state (see the
// `hooks` object at the bottom) so automated browser tests need not scrape the DOM.

const HELLO = { type: "hello", client: "framecast-web", version: "0.1" };
const WIRE_RATE_IN = 16000; // PROTOCOL.md: client -> server audio is 16 kHz
const CAPTURE_CHUNK_MS = 40;
const PLAYBACK_CAPACITY_S = 60;
const READY_TIMEOUT_MS = 5000;
const MAX_SEND_BACKLOG_BYTES = 256 * 1024; // ~8 s of 16 kHz PCM16; beyond it, drop mic audio
const METER_FLOOR_DB = -60;

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  connect: $("connect"),
  disconnect: $("disconnect"),
  reconnect: $("reconnect"),
  session: $("session"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  meterFill: $("meter-fill"),
  meterLabel: $("meter-label"),
  conversation: $("conversation"),
  emptyHint: $("empty-hint"),
  sayForm: $("say"),
  sayText: $("say-text"),
  saySend: $("say-send"),
  errorLog: $("error-log"),
  errorCount: $("error-count"),
  errorList: $("error-list"),
  stats: $("stats"),
};

/** Everything the hooks expose, plus private connection plumbing. */
const state = {
  connected: false,
  ready: false,
  session: null,
  sampleRateIn: null,
  sampleRateOut: null,
  contextSampleRate: null,
  mic: "off", // off | starting | on | denied | unavailable | error
  turnsHeard: 0,
  transcripts: [], // {turn, text, final} in arrival order
  replies: {}, // turn -> accumulated reply text
  emotions: {}, // turn -> {label, score}
  metrics: {}, // turn -> latest metrics event
  audioBytesSent: 0,
  audioChunksSkipped: 0,
  audioBytesReceived: 0,
  audioBytesDropped: 0,
  samplesPlayed: 0,
  bufferedSamples: 0,
  samplesCleared: 0,
  playbackOverflow: 0,
  underruns: 0,
  lastCancelTurn: null,
  errors: [], // {message, code}
  events: [], // type of every JSON event received, in order
};

let socket = null;
let userClosed = false;
let everOpened = false;
let readyTimer = null;
let audioContext = null;
let workletsLoaded = null;
let playbackNode = null;
let micStream = null;
let micSource = null;
let captureNode = null;
// Reply audio routing: binary messages carry no turn, so they belong to the reply whose
// audio_start came last, until its audio_end/audio_cancel. In between, they belong to
// nobody and are dropped.
let audioTurn = null;
let audioRate = 0;
let oddByte = null; // a PCM16 sample split across two binary messages
const heardTurns = new Set();
const pendingTyped = []; // typed texts not yet matched to a turn card
const turnCards = new Map();

// ---------------------------------------------------------------- connection

function socketUrl() {
  const override = new URLSearchParams(location.search).get("ws");
  if (override) return override;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/audio`;
}

async function connect() {
  if (socket) return;
  hideNotice();
  userClosed = false;
  everOpened = false;
  startConversation();
  setStatus("connecting", "Connecting…");
  setButtons();
  try {
    await ensureAudio(); // first, while the click still counts as a user gesture
  } catch (err) {
    console.error(err);
    showNotice(`Audio output could not start: ${err.message || err}`);
  }
  const url = socketUrl();
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (err) {
    setStatus("idle", "Disconnected");
    showNotice(`Bad server address ${url}: ${err.message}`);
    setButtons();
    return;
  }
  ws.binaryType = "arraybuffer";
  socket = ws;
  setButtons();
  ws.onopen = () => {
    everOpened = true;
    state.connected = true;
    ws.send(JSON.stringify(HELLO));
    setStatus("connecting", "Connected, waiting for the bot…");
    readyTimer = setTimeout(() => {
      showNotice("The server accepted the connection but did not answer hello with ready.");
    }, READY_TIMEOUT_MS);
    setButtons();
  };
  ws.onmessage = (message) => {
    if (message.data instanceof ArrayBuffer) onAudio(message.data);
    else onEvent(message.data);
  };
  ws.onclose = (event) => onClosed(ws, event, url);
}

/** Turn numbers restart with each session: start a fresh conversation view and log. */
function startConversation() {
  Object.assign(state, {
    turnsHeard: 0, transcripts: [], replies: {}, emotions: {}, metrics: {},
    lastCancelTurn: null, errors: [], events: [],
  });
  heardTurns.clear();
  pendingTyped.length = 0;
  turnCards.clear();
  ui.conversation.querySelectorAll(".turn").forEach((card) => card.classList.add("old"));
  ui.errorList.replaceChildren();
  ui.errorCount.textContent = "0";
  ui.errorLog.hidden = true;
}

function disconnect() {
  userClosed = true;
  if (socket) socket.close(1000, "client disconnect");
  else setButtons();
}

function onClosed(ws, event, url) {
  if (socket !== ws) return;
  socket = null;
  clearTimeout(readyTimer);
  state.connected = false;
  state.ready = false;
  stopMic();
  stopPlayback(null);
  audioTurn = null;
  setStatus("idle", "Disconnected");
  if (userClosed) {
    hideNotice();
  } else if (!everOpened) {
    showNotice(`Server unreachable at ${url}. Is the bot running?`, true);
    setStatus("lost", "Unreachable");
  } else {
    const why = event.reason ? `: ${event.reason}` : "";
    showNotice(`Connection lost (code ${event.code}${why}).`, true);
    setStatus("lost", "Connection lost");
  }
  setButtons();
}

function send(json) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(json));
}

// ---------------------------------------------------------------- audio plumbing

async function ensureAudio() {
  if (!audioContext) {
    audioContext = new AudioContext({ latencyHint: "interactive" });
    state.contextSampleRate = audioContext.sampleRate;
    // Worklet modules share one global scope per context and may import each other.
    workletsLoaded = Promise.all([
      audioContext.audioWorklet.addModule(new URL("capture-worklet.js", import.meta.url)),
      audioContext.audioWorklet.addModule(new URL("playback-worklet.js", import.meta.url)),
    ]);
  }
  const resumed = audioContext.resume();
  await workletsLoaded;
  await resumed;
  if (!playbackNode) {
    playbackNode = new AudioWorkletNode(audioContext, "framecast-playback", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { capacitySeconds: PLAYBACK_CAPACITY_S },
    });
    playbackNode.port.onmessage = (event) => onPlaybackMessage(event.data);
    playbackNode.connect(audioContext.destination);
  }
}

async function startMic() {
  if (state.mic === "on" || state.mic === "starting") return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setMic("unavailable", "The microphone needs a secure page (https or localhost). You can still type.");
    return;
  }
  setMic("starting");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
        channelCount: 1,
      },
    });
  } catch (err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      setMic("denied", "Microphone access was denied. Allow it in the site settings and reconnect, or type below.");
    } else if (name === "NotFoundError" || name === "OverconstrainedError") {
      setMic("unavailable", "No microphone found. You can still type below.");
    } else if (name === "NotReadableError") {
      setMic("error", "The microphone is busy or failed to start. You can still type below.");
    } else {
      setMic("error", `Microphone error: ${(err && err.message) || err}. You can still type below.`);
    }
    return;
  }
  if (!socket || !state.ready || !audioContext) {
    stream.getTracks().forEach((track) => track.stop()); // disconnected meanwhile
    setMic("off");
    return;
  }
  micStream = stream;
  try {
    micSource = audioContext.createMediaStreamSource(stream);
    captureNode = new AudioWorkletNode(audioContext, "framecast-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      processorOptions: { targetRate: state.sampleRateIn || WIRE_RATE_IN, chunkMs: CAPTURE_CHUNK_MS },
    });
  } catch (err) {
    stopMic();
    setMic("error", `Audio capture could not start: ${err.message || err}. You can still type below.`);
    return;
  }
  captureNode.port.onmessage = (event) => onCaptureChunk(event.data);
  micSource.connect(captureNode);
  for (const track of stream.getAudioTracks()) {
    track.onended = () => {
      if (micStream === stream) {
        stopMic();
        setMic("error", "The microphone was disconnected. You can still type below.");
      }
    };
  }
  setMic("on");
}

function stopMic() {
  if (captureNode) {
    captureNode.port.postMessage({ type: "stop" });
    captureNode.disconnect();
    captureNode = null;
  }
  if (micSource) {
    micSource.disconnect();
    micSource = null;
  }
  if (micStream) {
    micStream.getTracks().forEach((track) => track.stop());
    micStream = null;
  }
  if (state.mic === "on" || state.mic === "starting") setMic("off");
  showLevel(0);
}

function onCaptureChunk(message) {
  if (message.type !== "chunk") return;
  showLevel(message.rms);
  if (!socket || socket.readyState !== WebSocket.OPEN || !state.ready) return;
  if (socket.bufferedAmount > MAX_SEND_BACKLOG_BYTES) {
    state.audioChunksSkipped += 1; // the link is slower than real time; keep latency bounded
    return;
  }
  socket.send(message.pcm);
  state.audioBytesSent += message.pcm.byteLength;
  renderStats();
}

function onAudio(buffer) {
  state.audioBytesReceived += buffer.byteLength;
  if (audioTurn === null) {
    state.audioBytesDropped += buffer.byteLength; // after cancel/end: belongs to nobody
    renderStats();
    return;
  }
  let bytes = new Uint8Array(buffer);
  if (oddByte !== null) {
    const joined = new Uint8Array(bytes.length + 1);
    joined[0] = oddByte;
    joined.set(bytes, 1);
    bytes = joined;
    oddByte = null;
  }
  if (bytes.length % 2 === 1) {
    oddByte = bytes[bytes.length - 1];
    bytes = bytes.subarray(0, bytes.length - 1);
  }
  if (bytes.length === 0 || !playbackNode) return;
  const pcm = bytes.slice().buffer; // own copy: it is transferred to the worklet
  playbackNode.port.postMessage({ type: "pcm", turn: audioTurn, rate: audioRate, pcm }, [pcm]);
  renderStats();
}

function stopPlayback(turn) {
  if (playbackNode) playbackNode.port.postMessage({ type: "clear", turn });
}

function onPlaybackMessage(message) {
  if (message.type === "stats") {
    state.samplesPlayed = message.played;
    state.bufferedSamples = message.buffered;
    state.playbackOverflow = message.overflow;
  } else if (message.type === "drained") {
    state.samplesPlayed = message.played;
    // Running dry while the reply's audio is still open is an audible gap.
    if (audioTurn !== null) state.underruns += 1;
  } else if (message.type === "cleared") {
    state.samplesPlayed = message.played;
    state.samplesCleared += message.dropped;
  }
  renderStats();
}

// ---------------------------------------------------------------- protocol events

function onEvent(text) {
  let event;
  try {
    event = JSON.parse(text);
  } catch (err) {
    console.warn("framecast: ignoring a text message that is not JSON", text);
    return;
  }
  if (!event || typeof event !== "object" || typeof event.type !== "string") return;
  state.events.push(event.type);
  const handler = HANDLERS[event.type];
  if (handler) handler(event); // PROTOCOL.md: a client must ignore unknown event types
}

const HANDLERS = {
  ready(event) {
    clearTimeout(readyTimer);
    state.ready = true;
    state.session = event.session ?? null;
    state.sampleRateIn = event.sample_rate_in ?? WIRE_RATE_IN;
    state.sampleRateOut = event.sample_rate_out ?? null;
    setStatus("ready", "Ready");
    hideNotice();
    renderSession();
    setButtons();
    startMic().catch((err) => setMic("error", `Microphone error: ${err.message || err}`));
  },
  transcript(event) {
    const final = Boolean(event.final);
    state.transcripts.push({ turn: event.turn, text: event.text, final });
    if (final && !heardTurns.has(event.turn)) {
      heardTurns.add(event.turn);
      state.turnsHeard = heardTurns.size;
    }
    const card = turnCard(event.turn);
    card.utterance.textContent = event.text;
    card.utterance.className = final ? "utterance final" : "utterance partial";
  },
  emotion(event) {
    state.emotions[event.turn] = { label: event.label, score: event.score };
    const card = turnCard(event.turn);
    const score = typeof event.score === "number" ? ` ${event.score.toFixed(2)}` : "";
    card.emotion.textContent = `${event.label}${score}`;
    card.emotion.hidden = false;
  },
  reply(event) {
    const turn = event.turn;
    state.replies[turn] = (state.replies[turn] || "") + (event.text || "");
    const card = turnCard(turn);
    card.reply.textContent = state.replies[turn];
    card.bot.hidden = false;
    follow();
  },
  audio_start(event) {
    audioTurn = event.turn;
    audioRate = event.sample_rate || state.sampleRateOut || 24000;
    oddByte = null;
    const card = turnCard(event.turn);
    card.bot.hidden = false;
    setTag(card, "speaking", "speaking");
  },
  audio_end(event) {
    if (audioTurn === event.turn) audioTurn = null;
    oddByte = null;
    setTag(turnCard(event.turn), "", "");
  },
  audio_cancel(event) {
    state.lastCancelTurn = event.turn;
    stopPlayback(event.turn);
    if (audioTurn !== null && audioTurn <= event.turn) audioTurn = null;
    oddByte = null;
    setTag(turnCard(event.turn), "interrupted", "interrupted");
  },
  metrics(event) {
    state.metrics[event.turn] = event;
    renderMetrics(turnCard(event.turn), event);
  },
  error(event) {
    const entry = { message: String(event.message ?? ""), code: event.code ?? null };
    state.errors.push(entry);
    const item = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = entry.code ?? "error";
    item.append(code, ` ${entry.message}`);
    ui.errorList.append(item);
    ui.errorCount.textContent = String(state.errors.length);
    ui.errorLog.hidden = false;
    ui.errorLog.open = true;
  },
};

// ---------------------------------------------------------------- rendering

function turnCard(turn) {
  const existing = turnCards.get(turn);
  if (existing) return existing;
  const node = (tag, className, text) => {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text) el.textContent = text;
    return el;
  };
  const article = node("article", "turn");
  article.dataset.turn = String(turn);
  const user = node("div", "side user");
  const userHead = node("div", "head");
  const emotion = node("span", "badge emotion");
  emotion.hidden = true;
  userHead.append(node("span", "who", "You"), emotion);
  const utterance = node("p", "utterance partial", "…");
  user.append(userHead, utterance);
  const bot = node("div", "side bot");
  const botHead = node("div", "head");
  const tag = node("span", "badge tag");
  tag.hidden = true;
  botHead.append(node("span", "who", "Bot"), tag, node("span", "turn-no", `turn ${turn}`));
  const reply = node("p", "reply");
  bot.append(botHead, reply);
  bot.hidden = true;
  const metrics = node("ul", "metrics");
  article.append(user, bot, metrics);
  ui.emptyHint.hidden = true;
  ui.conversation.append(article);
  const card = { article, user, utterance, emotion, bot, reply, tag, metrics };
  if (pendingTyped.length > 0) {
    utterance.textContent = pendingTyped.shift();
    utterance.className = "utterance typed";
  }
  turnCards.set(turn, card);
  follow();
  return card;
}

/** Keep the newest text in view unless the user has scrolled up to read. */
function follow() {
  const box = ui.conversation;
  const slack = box.scrollHeight - box.scrollTop - box.clientHeight;
  if (slack < 120) box.scrollTop = box.scrollHeight;
}

function setTag(card, text, kind) {
  card.tag.textContent = text;
  card.tag.dataset.kind = kind;
  card.tag.hidden = !text;
}

function renderMetrics(card, event) {
  card.metrics.replaceChildren();
  for (const [key, value] of Object.entries(event)) {
    if (key === "type" || key === "turn" || typeof value !== "number") continue;
    const item = document.createElement("li");
    const name = key.replace(/_ms$/, "").replaceAll("_", " ");
    const shown = Math.abs(value) < 10 ? value.toFixed(1) : Math.round(value).toString();
    const strong = document.createElement("strong");
    strong.textContent = shown;
    item.append(`${name} `, strong, " ms");
    card.metrics.append(item);
  }
}

function renderSession() {
  const khz = (hz) => (hz ? `${(hz / 1000).toLocaleString("en", { maximumFractionDigits: 2 })} kHz` : "?");
  const parts = [`session ${state.session ?? "?"}`];
  parts.push(`mic ${khz(state.contextSampleRate)} → ${khz(state.sampleRateIn)}`);
  parts.push(`bot ${khz(state.sampleRateOut)} → ${khz(state.contextSampleRate)}`);
  ui.session.textContent = parts.join(" · ");
  ui.session.hidden = false;
}

function renderStats() {
  const kb = (bytes) => `${(bytes / 1024).toFixed(0)} kB`;
  const rate = state.contextSampleRate || 1;
  const parts = [
    `sent ${kb(state.audioBytesSent)}`,
    `received ${kb(state.audioBytesReceived)}`,
    `played ${(state.samplesPlayed / rate).toFixed(1)} s`,
    `queued ${(state.bufferedSamples / rate).toFixed(2)} s`,
  ];
  if (state.audioBytesDropped) parts.push(`dropped ${kb(state.audioBytesDropped)}`);
  if (state.underruns) parts.push(`gaps ${state.underruns}`);
  ui.stats.textContent = parts.join(" · ");
}

function showLevel(rms) {
  const db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
  const fraction = Math.max(0, Math.min(1, (db - METER_FLOOR_DB) / -METER_FLOOR_DB));
  ui.meterFill.style.width = `${(fraction * 100).toFixed(1)}%`;
  if (state.mic === "on") ui.meterLabel.textContent = Number.isFinite(db) ? `${db.toFixed(0)} dB` : "silent";
}

function setMic(mic, message) {
  state.mic = mic;
  const labels = { off: "mic off", starting: "mic…", on: "mic on", denied: "mic denied", unavailable: "no mic", error: "mic error" };
  ui.meterLabel.textContent = labels[mic];
  ui.meterLabel.dataset.mic = mic;
  if (message) showNotice(message);
}

function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
}

function showNotice(text, offerReconnect = false) {
  ui.noticeText.textContent = text;
  ui.reconnect.hidden = !offerReconnect;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  ui.reconnect.hidden = true;
}

function setButtons() {
  ui.connect.disabled = socket !== null;
  ui.disconnect.disabled = socket === null;
  ui.sayText.disabled = !state.ready;
  ui.saySend.disabled = !state.ready;
}

// ---------------------------------------------------------------- wiring

ui.connect.addEventListener("click", connect);
ui.reconnect.addEventListener("click", connect);
ui.disconnect.addEventListener("click", disconnect);
ui.sayForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.sayText.value.trim();
  if (!text || !state.ready) return;
  send({ type: "text", text });
  pendingTyped.push(text);
  ui.sayText.value = "";
});

const copyTurnMap = (map) => Object.fromEntries(Object.entries(map).map(([k, v]) => [k, { ...v }]));
const hooks = {
  get connected() { return state.connected; },
  get ready() { return state.ready; },
  get session() { return state.session; },
  get sampleRateIn() { return state.sampleRateIn; },
  get sampleRateOut() { return state.sampleRateOut; },
  get contextSampleRate() { return state.contextSampleRate; },
  get mic() { return state.mic; },
  get turnsHeard() { return state.turnsHeard; },
  get transcripts() { return state.transcripts.map((t) => ({ ...t })); },
  get replies() { return { ...state.replies }; },
  get emotions() { return copyTurnMap(state.emotions); },
  get metrics() { return copyTurnMap(state.metrics); },
  get audioBytesSent() { return state.audioBytesSent; },
  get audioChunksSkipped() { return state.audioChunksSkipped; },
  get audioBytesReceived() { return state.audioBytesReceived; },
  get audioBytesDropped() { return state.audioBytesDropped; },
  get samplesPlayed() { return state.samplesPlayed; },
  get bufferedSamples() { return state.bufferedSamples; },
  get samplesCleared() { return state.samplesCleared; },
  get playbackOverflow() { return state.playbackOverflow; },
  get underruns() { return state.underruns; },
  get lastCancelTurn() { return state.lastCancelTurn; },
  get errors() { return state.errors.map((e) => ({ ...e })); },
  get events() { return [...state.events]; },
};
Object.defineProperty(window, "framecast", { value: Object.freeze(hooks), enumerable: true });

setButtons();
renderStats();
