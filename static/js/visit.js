// The video visit (/visit/{id}/): the appointment's patient and doctor, camera to camera.
//
// Signalling goes over the portal's one socket (`call_signal`, relayed live to the other participant's
// sockets, never stored); media goes browser to browser, or through TURN when a direct path is not
// found (or `config.force_relay`). Negotiation is the W3C "perfect negotiation" pattern: either side
// may make an offer whenever its connection needs one; when two offers cross, the polite side (the
// patient) yields and the impolite side (the doctor) ignores the other's offer.
//
// The signals (`signal` in the frame) carry the sender's page `session` and, once known, the peer's
// page it is meant for (`to`):
//   hello        "this page is here": a page that learns of a new page of its peer starts a fresh
//                connection to it and says hello back (so a reload on either side re-dials)
//   description  an SDP offer or answer
//   candidates   ICE candidates, a few at a time (the socket takes at most 10 frames a second)
//   media        what the sender is sending (`audio`, `video`), for the other side's notes
//   bye          hung up: the visit ends on both sides
// A socket that comes back during a call restarts ICE if the connection was lost meanwhile; media over
// TURN carries on by itself while only the socket is away.

import { $, announce, api, config, formatDate, formatTime, signIn, t } from "./base.js";
import { createSocket } from "./socket.js";

const CALL_URL = `/api/appointments/${config.appointment_id}/call/`;
const VIDEO_MAX_BITRATE = 800_000; // bits/s: enough for a face at 640×480, kind to a shared clinic line
const VOICE_ONLY_AUDIO_BITRATE = 24_000; // Opus stays clear well below this on a weak line
const CANDIDATE_BATCH_MS = 60;
const DISCONNECTED_GRACE_MS = 4000; // Chrome often recovers a "disconnected" path by itself
const FAILED_AFTER_MS = 30_000; // trying again for this long before the page says it failed
const QUEUE_LIMIT = 60; // signals kept while the socket is away

const session = randomId();
const ui = {
  state: $('[data-testid="call-state"]'),
  stateText: $('[data-role="state-text"]'),
  remote: $('[data-testid="remote-video"]'),
  local: $('[data-testid="local-video"]'),
  peerNote: $('[data-role="peer-note"]'),
  problem: $('[data-testid="media-error"]'),
  problemText: $('[data-role="problem-text"]'),
  retry: $('[data-testid="retry"]'),
  mute: $('[data-testid="mute"]'),
  camera: $('[data-testid="camera-off"]'),
  voiceOnly: $('[data-testid="audio-only"]'),
  hangUp: $('[data-testid="hang-up"]'),
  ended: $('[data-role="ended"]'),
  route: $('[data-role="route"]'),
};

let local = null; // the camera and microphone
let iceServers = [];
let refreshTimer = null;
let pc = null;
let peerSession = null;
let makingOffer = false;
let ignoreOffer = false;
let isSettingRemoteAnswerPending = false;
let inbox = Promise.resolve(); // signals are handled one after the other
let outbox = []; // signals waiting for the socket
let candidates = [];
let candidateTimer = null;
let disconnectTimer = null;
let failTimer = null;
let nudgeTimer = null;
let wasConnected = false; // this connection has been up (a loss of it is "reconnecting")
let unreported = true; // its next "connected" goes to the call log (the first, and after a failure)
let joined = false;
let over = false;
const sending = { audio: true, video: true, voiceOnly: false };

function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- what the page shows ----

const when = $('[data-role="when"]'); // the appointment's day and time, in the page's language and digits
when.textContent = `${formatDate(when.dataset.date)} · ${formatTime(when.dataset.time)}`;

function setState(state, text = t(`state.${state}`, { name: config.peer_name })) {
  if (ui.state.dataset.state !== state) announce(text);
  ui.state.dataset.state = state;
  ui.stateText.textContent = text;
  const live = state === "waiting" || state === "connecting" || state === "connected";
  for (const button of [ui.mute, ui.camera, ui.voiceOnly, ui.hangUp]) button.disabled = !live || !local;
  ui.ended.hidden = state !== "ended" && state !== "failed";
}

function showProblem(text, retry) {
  ui.problemText.textContent = text;
  ui.problem.hidden = !text;
  ui.retry.hidden = !retry;
  ui.retry.onclick = retry || null;
}

function toggle(button, pressed, labelKey) {
  button.setAttribute("aria-pressed", String(pressed));
  $('[data-role="label"]', button).textContent = t(labelKey);
}

function showPeerMedia(media) {
  const notes = [];
  if (media.video === false) notes.push(t("call.peer_camera_off", { name: config.peer_name }));
  if (media.audio === false) notes.push(t("call.peer_muted", { name: config.peer_name }));
  ui.peerNote.textContent = notes.join(" · ");
  ui.peerNote.hidden = notes.length === 0;
  ui.remote.classList.toggle("dimmed", media.video === false);
}

// ---- the call log (`POST …/call/events/`): who joined, how it connected, what failed, who left ----

function report(event, extra = {}, keepalive = false) {
  const body = JSON.stringify({ event, ...extra });
  const url = `${CALL_URL}events/`;
  if (keepalive) {
    // The page is going away: a request that outlives it (no answer is read).
    fetch(url, {
      method: "POST",
      body,
      keepalive: true,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrf_token },
    }).catch(() => {});
    return;
  }
  api("POST", url, { event, ...extra });
}

// The selected candidate pair's route: "relay" when either end of it is a TURN relay.
async function route(connection) {
  const stats = await connection.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) stats.forEach((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && (pair = s));
  if (!pair) return null;
  const ends = [stats.get(pair.localCandidateId), stats.get(pair.remoteCandidateId)];
  return ends.some((c) => c && c.candidateType === "relay") ? "relay" : "direct";
}

// ---- the socket ----

const socket = createSocket({ closeCodes: config.close_codes, lastEventId: config.last_event_id });
socket.on("unauthorized", signIn);

const connNode = $('[data-testid="connection-status"]');
let connectedOnce = false;
connNode.dataset.sessions = "0";
socket.on("state", (state) => {
  const key = state === "reconnecting" && !connectedOnce ? "conn.connecting" : `conn.${state}`;
  connectedOnce = connectedOnce || state === "connected";
  connNode.dataset.state = state;
  $(".conn-text", connNode).textContent = t(key);
});

socket.on("ready", () => {
  connNode.dataset.sessions = String(Number(connNode.dataset.sessions) + 1);
  if (!joined || over) return;
  const waiting = outbox;
  outbox = [];
  for (const signal of waiting) sendSignal(signal);
  sendSignal({ type: "hello" });
  // The socket was away: if the media path was lost meanwhile too, find a new one now.
  if (pc && ["disconnected", "failed"].includes(pc.connectionState)) restart(pc);
});

socket.on("call_signal", (data) => {
  if (data.appointment_id !== config.appointment_id || !joined || over) return;
  const signal = data.signal || {};
  if (signal.to && signal.to !== session) return; // meant for another page of this user
  inbox = inbox.then(() => receive(signal)).catch((err) => console.error(err));
});

socket.on("appointment_updated", (a) => {
  if (a.id === config.appointment_id && a.status === "CANCELLED") end();
});

function sendSignal(signal) {
  const stamped = { ...signal, session, ...(peerSession && !signal.to ? { to: peerSession } : {}) };
  const sent = socket.send({ type: "call_signal", data: { appointment_id: config.appointment_id, signal: stamped } });
  if (!sent && signal.type !== "hello") {
    outbox.push(stamped);
    if (outbox.length > QUEUE_LIMIT) outbox.shift();
  }
}

// ---- the peer connection ----

function rtcConfiguration() {
  return { iceServers, iceTransportPolicy: config.force_relay ? "relay" : "all" };
}

function closePeer() {
  clearTimeout(disconnectTimer);
  clearTimeout(failTimer);
  failTimer = null;
  clearTimeout(nudgeTimer);
  clearTimeout(candidateTimer);
  candidateTimer = null;
  candidates = [];
  if (pc) {
    pc.onnegotiationneeded = pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = null;
    pc.close();
  }
  pc = null;
  ui.remote.srcObject = null;
}

function dial() {
  closePeer();
  const mine = new RTCPeerConnection(rtcConfiguration());
  pc = mine;
  makingOffer = ignoreOffer = isSettingRemoteAnswerPending = false;
  wasConnected = false;
  unreported = true;
  for (const track of local.getTracks()) mine.addTrack(track, local);
  mine.ontrack = ({ track, streams }) => {
    ui.remote.srcObject = streams[0] || new MediaStream([track]);
  };
  mine.onicecandidate = ({ candidate }) => {
    if (!candidate || !candidate.candidate) return;
    candidates.push(candidate.toJSON());
    if (!candidateTimer) {
      candidateTimer = setTimeout(() => {
        candidateTimer = null;
        if (pc !== mine || !candidates.length) return;
        sendSignal({ type: "candidates", candidates });
        candidates = [];
      }, CANDIDATE_BATCH_MS);
    }
  };
  mine.onnegotiationneeded = async () => {
    try {
      makingOffer = true;
      await mine.setLocalDescription();
      if (pc === mine) sendSignal({ type: "description", description: mine.localDescription.toJSON() });
    } catch (err) {
      console.error(err);
    } finally {
      makingOffer = false;
    }
  };
  mine.onconnectionstatechange = () => watch(mine);
  setState("connecting");
  armFailTimer(mine);
}

function sendMedia() {
  sendSignal({ type: "media", audio: sending.audio, video: sending.video && !sending.voiceOnly });
}

async function receive(signal) {
  if (signal.type === "hello") {
    if (signal.session === peerSession) return; // its socket came back: nothing new
    peerSession = signal.session;
    dial();
    sendSignal({ type: "hello", to: peerSession }); // it may not know this page yet
    sendMedia();
    return;
  }
  if (signal.session !== peerSession || !pc) return; // from an earlier page of the peer
  if (signal.type === "description") await onDescription(signal.description);
  else if (signal.type === "candidates") await onCandidates(signal.candidates || []);
  else if (signal.type === "media") showPeerMedia(signal);
  else if (signal.type === "bye") end({ said: false });
}

async function onDescription(description) {
  const mine = pc;
  const readyForOffer = !makingOffer && (mine.signalingState === "stable" || isSettingRemoteAnswerPending);
  const offerCollision = description.type === "offer" && !readyForOffer;
  ignoreOffer = !config.polite && offerCollision;
  if (ignoreOffer) return;
  isSettingRemoteAnswerPending = description.type === "answer";
  await mine.setRemoteDescription(description); // a polite side's own offer is rolled back here
  isSettingRemoteAnswerPending = false;
  if (description.type === "offer") {
    await mine.setLocalDescription();
    if (pc === mine) sendSignal({ type: "description", description: mine.localDescription.toJSON() });
  }
}

async function onCandidates(list) {
  for (const candidate of list) {
    try {
      await pc.addIceCandidate(candidate);
    } catch (err) {
      if (!ignoreOffer) console.error(err); // candidates of an ignored offer fail, as they should
    }
  }
}

// An offer left unanswered (lost with a socket that died under it) is taken back first: a new one
// with new ICE credentials follows.
async function nudge(mine) {
  if (pc !== mine || over || mine.connectionState === "connected" || socket.state !== "connected") return;
  if (mine.signalingState === "have-local-offer" && !makingOffer) {
    await mine.setLocalDescription({ type: "rollback" }).catch((err) => console.error(err));
  }
  restart(mine);
}

function restart(mine) {
  if (pc !== mine || over) return;
  mine.restartIce(); // a new offer with new ICE credentials, by onnegotiationneeded
}

async function watch(mine) {
  if (pc !== mine || over) return;
  const state = mine.connectionState;
  if (state === "connected") {
    clearTimeout(disconnectTimer);
    clearTimeout(failTimer);
    clearTimeout(nudgeTimer);
    failTimer = null;
    showProblem("");
    setState("connected");
    applySending();
    const how = await route(mine).catch(() => null);
    if (pc !== mine) return;
    ui.route.textContent = how ? t(`call.route_${how}`) : "";
    ui.state.dataset.route = how || "";
    if (unreported) report("connected", how ? { route: how } : {});
    unreported = false;
    wasConnected = true;
    return;
  }
  if (state === "disconnected" || state === "failed") {
    setState("connecting", wasConnected ? t("state.reconnecting") : t("state.connecting"));
    clearTimeout(disconnectTimer);
    if (state === "failed") {
      unreported = true; // when it is back, its route goes to the log again
      if (socket.state === "connected") restart(mine); // else when the socket is back (on "ready")
    } else {
      disconnectTimer = setTimeout(() => mine.connectionState === "disconnected" && restart(mine), DISCONNECTED_GRACE_MS);
    }
    armFailTimer(mine);
  }
}

// Not connected (again) within FAILED_AFTER_MS: the page gives up and says so; Try again reloads it
// (a new page: the other side dials it afresh).
function armFailTimer(mine) {
  if (failTimer) return;
  // Halfway, still not connected: one more ICE restart (checks that stalled on a busy relay or a
  // changed network are not waited out).
  clearTimeout(nudgeTimer);
  nudgeTimer = setTimeout(nudge, FAILED_AFTER_MS / 2, mine);
  failTimer = setTimeout(() => {
    failTimer = null;
    if (pc !== mine || mine.connectionState === "connected" || over) return;
    report("failed"); // given up: the call log's "failed"
    setState("failed");
    showProblem(t("call.lost", { name: config.peer_name }), () => location.reload());
  }, FAILED_AFTER_MS);
}

// ---- what this side sends ----

async function capBitrate(sender, settings) {
  const params = sender.getParameters();
  if (!params.encodings || !params.encodings.length) return; // not negotiated yet: applied once connected
  Object.assign(params.encodings[0], settings);
  await sender.setParameters(params).catch((err) => console.error(err));
}

// Voice only stops sending video (the encoding goes inactive: no bits at all, no renegotiation) and
// keeps the voice small; the camera's own track is off meanwhile.
function applySending() {
  if (!local) return;
  for (const track of local.getAudioTracks()) track.enabled = sending.audio;
  for (const track of local.getVideoTracks()) track.enabled = sending.video && !sending.voiceOnly;
  if (!pc) return;
  for (const sender of pc.getSenders()) {
    if (!sender.track) continue;
    if (sender.track.kind === "video") {
      capBitrate(sender, { active: !sending.voiceOnly, maxBitrate: VIDEO_MAX_BITRATE });
    } else {
      const settings = { maxBitrate: sending.voiceOnly ? VOICE_ONLY_AUDIO_BITRATE : undefined };
      capBitrate(sender, settings);
    }
  }
}

function changeSending() {
  applySending();
  ui.local.classList.toggle("dimmed", !sending.video || sending.voiceOnly);
  if (pc) sendMedia();
}

ui.mute.addEventListener("click", () => {
  sending.audio = !sending.audio;
  toggle(ui.mute, !sending.audio, sending.audio ? "call.mute" : "call.unmute");
  changeSending();
});
ui.camera.addEventListener("click", () => {
  sending.video = !sending.video;
  toggle(ui.camera, !sending.video, sending.video ? "call.camera_off" : "call.camera_on");
  changeSending();
});
ui.voiceOnly.addEventListener("click", () => {
  sending.voiceOnly = !sending.voiceOnly;
  toggle(ui.voiceOnly, sending.voiceOnly, "call.audio_only");
  ui.camera.disabled = sending.voiceOnly;
  changeSending();
});

// ---- start and end ----

function mediaProblem(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") return t("media.denied");
  if (name === "NotReadableError" || name === "AbortError") return t("media.busy");
  return t("media.missing");
}

async function openMedia() {
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  } catch (err) {
    if (err.name !== "NotFoundError" && err.name !== "OverconstrainedError") throw err;
  }
  // No camera: the visit by voice.
  const voice = await navigator.mediaDevices.getUserMedia({ audio: true });
  showProblem(t("media.no_camera"));
  return voice;
}

// The ICE servers expire (TURN credentials are time-limited): fetched again before they do.
function scheduleRefresh(expiresAt) {
  clearTimeout(refreshTimer);
  const left = new Date(expiresAt).getTime() - Date.now();
  if (!Number.isFinite(left)) return;
  refreshTimer = setTimeout(
    async () => {
      const result = await api("GET", CALL_URL);
      if (result.ok) {
        iceServers = result.data.ice_servers;
        if (pc) pc.setConfiguration(rtcConfiguration());
        scheduleRefresh(result.data.expires_at);
      } else if (!over) {
        scheduleRefresh(new Date(Date.now() + 120_000).toISOString()); // try again in a while
      }
    },
    Math.max(5_000, left * 0.8),
  );
}

async function start() {
  showProblem("");
  setState("waiting", t("loading"));
  const call = await api("GET", CALL_URL);
  if (!call.ok) {
    setState("failed", t(call.status === 0 ? "conn.offline" : "state.closed"));
    ui.state.dataset.reason = call.status === 0 ? "network" : "closed";
    showProblem(t(call.status === 0 ? "call.unavailable" : "call.closed"), start);
    return;
  }
  iceServers = call.data.ice_servers;
  scheduleRefresh(call.data.expires_at);
  if (!local) {
    try {
      local = await openMedia();
    } catch (err) {
      setState("failed", t("state.no_media"));
      ui.state.dataset.reason = err && err.name === "NotAllowedError" ? "media-denied" : "media";
      showProblem(mediaProblem(err), start);
      return; // not in the call: nothing for its log
    }
    ui.local.srcObject = local;
  }
  delete ui.state.dataset.reason;
  joined = true;
  setState("waiting");
  report("join");
  if (socket.state === "connected") sendSignal({ type: "hello" }); // else when it is ready
}

function end({ said = true } = {}) {
  if (over) return;
  over = true;
  if (said && peerSession) sendSignal({ type: "bye" });
  if (joined) report("leave");
  clearTimeout(refreshTimer);
  closePeer();
  for (const track of local ? local.getTracks() : []) track.stop();
  ui.local.srcObject = null;
  showProblem("");
  ui.peerNote.hidden = true;
  setState("ended");
}

ui.hangUp.addEventListener("click", () => end());
window.addEventListener("pagehide", () => {
  if (joined && !over) report("leave", {}, true);
});

socket.connect();
start();
