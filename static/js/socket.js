// The portal's one WebSocket: token from the session, resume from the last applied event,
// reconnect with backoff for as long as the page is open. Three exceptions: `resync` (the server
// will not replay that far back: the page reloads its state over REST and carries on from the id
// given), a close with 4429 (another tab or device took this one's slot: no reconnect until
// the user touches the page, or two windows would keep closing each other), and a close with 1012
// (the server is restarting: reconnect at once, to another server, resuming from the last event).
// A display board has no user: `tokenUrl: null` and its `query` (`board=<token>`) instead.
// The close codes come from the page's config (`closeCodes`: core/wire.py's CLOSE_CODES).

const MIN_DELAY = 1000;
const MAX_DELAY = 30000;
const SIGNED_OUT_PAUSE = 1000; // after a signed-out close (4401), before asking for a new token

function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp * 1000;
  } catch {
    return 0;
  }
}

export function createSocket({
  closeCodes,
  lastEventId = 0,
  tokenUrl = "/api/auth/ws-token/",
  path = "/ws/",
  query = "",
} = {}) {
  const handlers = new Map();
  const queues = new Set(); // doctor ids joined; joined again after every reconnect
  let lastId = lastEventId;
  let ws = null;
  let ready = false;
  let connecting = false;
  let attempt = 0;
  let timer = null;
  let token = null;
  let state = null;
  let closedByPage = false;
  let lastRefusal = 0;
  let displaced = false; // closed with 4429: waiting for the user

  function emit(type, data, frame) {
    for (const fn of handlers.get(type) || []) {
      try {
        fn(data, frame);
      } catch (err) {
        console.error(err);
      }
    }
  }

  function on(type, fn) {
    if (!handlers.has(type)) handlers.set(type, new Set());
    handlers.get(type).add(fn);
    return () => handlers.get(type).delete(fn);
  }

  function setState(next) {
    if (next === state) return;
    state = next;
    emit("state", next);
  }

  async function freshToken() {
    if (!tokenUrl) return null;
    if (token && tokenExpiry(token) - Date.now() > 30000) return token;
    token = null;
    const response = await fetch(tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401 || response.status === 403) {
      emit("unauthorized");
      throw new Error("signed out");
    }
    if (!response.ok) throw new Error(`token: ${response.status}`);
    token = (await response.json()).access;
    return token;
  }

  function schedule() {
    if (closedByPage) return;
    setState(navigator.onLine === false ? "offline" : "reconnecting");
    clearTimeout(timer);
    const base = Math.min(MAX_DELAY, MIN_DELAY * 2 ** attempt);
    const delay = Math.min(MAX_DELAY, Math.max(MIN_DELAY, base * (0.7 + Math.random() * 0.6)));
    attempt += 1;
    timer = setTimeout(connect, delay);
  }

  async function connect() {
    clearTimeout(timer);
    timer = null;
    if (ws || connecting || closedByPage) return;
    displaced = false;
    if (navigator.onLine === false) {
      setState("offline");
      return; // the browser's `online` event brings us back
    }
    if (state !== "connected") setState("reconnecting");
    connecting = true;
    let access;
    try {
      access = await freshToken();
    } catch {
      connecting = false;
      schedule();
      return;
    }
    connecting = false;
    if (ws || closedByPage) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = access ? `token=${encodeURIComponent(access)}&last_event_id=${lastId}` : query;
    const url = `${scheme}//${location.host}${path}?${params}`;
    const sock = new WebSocket(url);
    ws = sock;
    // A handshake that neither opens nor fails (a dead network path) is given up on.
    const watchdog = setTimeout(() => !ready && sock.close(), 15000);
    sock.onmessage = (event) => receive(sock, event.data);
    sock.onclose = (event) => {
      clearTimeout(watchdog);
      if (ws !== sock) return;
      const wasReady = ready;
      ws = null;
      ready = false;
      if (closedByPage) return;
      if (!wasReady) token = null; // refused at the handshake: the next try asks for a new token
      if (event.code === closeCodes.too_many_sockets) {
        waitForUser();
        return;
      }
      if (event.code === closeCodes.service_restart && wasReady) {
        // A graceful restart: another server (or this one, back) takes the socket now, from lastId.
        attempt = 0;
        setState("reconnecting");
        connect();
        return;
      }
      if (event.code === closeCodes.signed_out) {
        // The token expired under the open socket, or the user's password changed (in another tab
        // too): a new token, after a moment (once; then back off). The moment lets the other tab's
        // response renew the session cookie first, or its new token would be refused.
        token = null;
        const now = Date.now();
        const again = now - lastRefusal < 10000;
        lastRefusal = now;
        if (!again) {
          setState("reconnecting");
          clearTimeout(timer);
          timer = setTimeout(connect, SIGNED_OUT_PAUSE);
          return;
        }
      }
      schedule();
    };
  }

  function waitForUser() {
    displaced = true;
    clearTimeout(timer);
    setState("disconnected");
    const again = () => {
      document.removeEventListener("pointerdown", again, true);
      document.removeEventListener("keydown", again, true);
      if (!displaced) return;
      attempt = 0;
      connect();
    };
    document.addEventListener("pointerdown", again, true);
    document.addEventListener("keydown", again, true);
  }

  function receive(sock, text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string") return;
    if (frame.type === "ready") {
      ready = true;
      attempt = 0;
      const newest = frame.data ? frame.data.last_event_id : undefined;
      // A server whose stream is behind ours was reset: follow it rather than ignore it forever.
      if (newest === null) lastId = 0;
      else if (typeof newest === "number" && newest < lastId) lastId = newest;
      setState("connected");
      for (const doctorId of queues) sock.send(JSON.stringify({ type: "join_queue", data: { doctor_id: doctorId } }));
      emit("ready", frame.data, frame);
      return;
    }
    if (frame.type === "resync") {
      // Too far behind to replay: what the page shows is reloaded, and the stream goes on from here.
      const newest = frame.data ? frame.data.last_event_id : undefined;
      if (typeof newest === "number") lastId = newest;
      emit("resync", frame.data || {}, frame);
      return;
    }
    if (typeof frame.id === "number") {
      if (frame.id <= lastId) return; // applied already (replay overlap)
      lastId = frame.id;
    }
    emit(frame.type, frame.data || {}, frame);
  }

  function send(message) {
    const doctorId = message && message.data && message.data.doctor_id;
    if (message.type === "join_queue") queues.add(doctorId);
    if (message.type === "leave_queue") queues.delete(doctorId);
    if (!ws || !ready || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  function close() {
    closedByPage = true;
    clearTimeout(timer);
    if (ws) ws.close(1000);
  }

  window.addEventListener("online", () => {
    if (displaced) return; // still waits for the user
    if (ws && ready) {
      setState("connected");
      return;
    }
    attempt = 0;
    connect();
  });
  window.addEventListener("offline", () => displaced || setState("offline"));
  window.addEventListener("pagehide", close);
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted || displaced) return; // back from the page cache: carry on from where we were
    closedByPage = false;
    attempt = 0;
    connect();
  });

  return {
    on,
    send,
    connect,
    close,
    get state() {
      return state;
    },
    get lastEventId() {
      return lastId;
    },
  };
}
