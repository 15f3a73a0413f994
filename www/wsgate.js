// wsgate.js: the browser client for wsgate. One ES module, no dependencies.
//
// It always learns why: a refusal before the upgrade (which a browser reports as
// a bare 1006) is asked about over plain HTTP and reported with the server's own
// code and reason; every close then follows the server's close-code table:
// stop, reconnect with backoff, or reconnect at once. It never schedules two
// reconnects, and never reconnects after a code that says not to.
//
//   import { WsgateClient } from "/wsgate.js";
//   const c = new WsgateClient("wss://example.com/ws", { token, device: "laptop" });
//   c.on("welcome", (w) => c.subscribe("news"));
//   c.on("message", (m) => console.log(m.channel, m.data));
//   c.on("close", (e) => console.log(e.code, e.reason, e.advice, e.willReconnect, e.retryInMs));

// The advice strings of the server's table (GET /close-codes).
export const ADVICE = Object.freeze({
  STOP: "do not reconnect unchanged",
  BACKOFF: "reconnect with backoff",
  NOW: "reconnect at once",
});

// The client's built-in reconnect policy; a test keeps it equal to the server's
// table (every code of GET /close-codes, and the ranges).
export const CLOSE_POLICY = Object.freeze({
  codes: Object.freeze({
    1000: ADVICE.STOP, 1002: ADVICE.STOP, 1003: ADVICE.STOP, 1007: ADVICE.STOP, 1009: ADVICE.STOP,
    1001: ADVICE.BACKOFF, 1006: ADVICE.BACKOFF, 1011: ADVICE.BACKOFF, 1012: ADVICE.BACKOFF,
    1013: ADVICE.BACKOFF,
  }),
  ranges: Object.freeze([
    Object.freeze({ from: 4000, to: 4099, advice: ADVICE.STOP }),
    Object.freeze({ from: 4100, to: 4199, advice: ADVICE.BACKOFF }),
    Object.freeze({ from: 4200, to: 4299, advice: ADVICE.NOW }),
  ]),
  // anything else (4300-4999, other 1xxx, 3xxx): as the server's closecode_advice_for
  otherwise: ADVICE.STOP,
});

// What to do after a close with this code.
export function adviceFor(code) {
  if (Object.prototype.hasOwnProperty.call(CLOSE_POLICY.codes, code)) return CLOSE_POLICY.codes[code];
  for (const r of CLOSE_POLICY.ranges) if (code >= r.from && code <= r.to) return r.advice;
  return CLOSE_POLICY.otherwise;
}

// Exponential backoff with full jitter: a uniform wait in [0, min(max, base * 2^attempt)).
export function backoffDelay(attempt, { baseMs = 1000, maxMs = 30000 } = {}, random = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

// The plain-HTTP URL that answers the verdict an upgrade to wsUrl would get.
export function verdictUrl(wsUrl) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  return u.toString();
}

const STATES = ["idle", "connecting", "open", "waiting", "stopped"];

export class WsgateClient {
  constructor(url, options = {}) {
    const g = globalThis;
    this.options = {
      token: undefined,
      device: undefined,
      reconnect: { baseMs: 1000, maxMs: 30000 },
      pongTimeoutMs: 5000, // after our "ping", how long a silent server has before it is declared dead
      connectTimeoutMs: 10000, // from new WebSocket to open (and for the verdict query)
      ghostWindowMs: undefined, // after losing an admitted session, how long a 4001 means that session (3 x heartbeat_ms)
      autoConnect: true,
      ...options,
    };
    this.options.reconnect = { baseMs: 1000, maxMs: 30000, ...(options.reconnect || {}) };
    this._WebSocket = options.WebSocket || g.WebSocket;
    this._fetch = options.fetch || (g.fetch && g.fetch.bind(g));
    this._timers = options.timers || { setTimeout: g.setTimeout.bind(g), clearTimeout: g.clearTimeout.bind(g) };
    this._random = options.random || Math.random;
    this._now = options.now || Date.now;
    this._window = "window" in options ? options.window : g.window;
    this._navigator = "navigator" in options ? options.navigator : g.navigator;

    const u = new URL(url);
    if (this.options.token !== undefined) u.searchParams.set("token", this.options.token);
    if (this.options.device !== undefined && this.options.device !== "") u.searchParams.set("device", this.options.device);
    this.url = u.toString();

    this.state = "idle";
    this.session = null; // the welcome, once admitted
    this.attempt = 0; // failed attempts since the last welcome
    this._listeners = new Map();
    this._ws = null;
    this._retryTimer = null; // the one reconnect timer
    this._heartbeatTimer = null; // idle -> ping -> pong deadline
    this._connectTimer = null;
    this._nextId = 1;
    this._pending = new Map(); // id -> { resolve, reject, request }
    this._channels = new Map(); // channel -> { lastSeq, epoch, waiters: [] }
    this._stoppedByPage = false;
    this._ghostUntil = null; // until when a 4001 may be our own lost session (see _closed)
    this._lastHeartbeatMs = 0;

    this._onOnline = () => {
      if (this.state === "waiting") this._reconnectNow("online");
    };
    this._onPageHide = (e) => this._pageHidden(e);
    this._onPageShow = (e) => {
      if (e && e.persisted && this._hiddenInCache) this.connect();
    };
    if (this._window && this._window.addEventListener) {
      this._window.addEventListener("online", this._onOnline);
      this._window.addEventListener("pagehide", this._onPageHide);
      this._window.addEventListener("pageshow", this._onPageShow);
    }
    if (this.options.autoConnect) Promise.resolve().then(() => this.state === "idle" && this.connect());
  }

  // ---- events: open, welcome, message, close, error, state, gap, restored ----
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) set.delete(fn);
  }

  _emit(type, detail) {
    for (const fn of [...(this._listeners.get(type) || [])]) {
      try {
        fn(detail);
      } catch (e) {
        Promise.reject(e); // a listener's bug surfaces as an unhandled rejection, not ours
      }
    }
  }

  _setState(state, extra = {}) {
    if (!STATES.includes(state)) throw new Error("bad state " + state);
    this.state = state;
    this._emit("state", { state, ...extra });
  }

  // ---- lifecycle ----
  connect() {
    if (this.state === "connecting" || this.state === "open") return;
    this._clearRetry();
    this._stoppedByPage = false;
    this._hiddenInCache = false;
    this.attempt = 0;
    this._open();
  }

  // Closes for good (1000 by default; browsers only send 1000 or 3000-4999).
  close(code = 1000, reason = "closed by the page") {
    this._stoppedByPage = true;
    this._clearRetry();
    const ws = this._detach();
    if (ws) {
      try {
        ws.close(code, reason);
      } catch (e) {
        ws.close();
      }
    }
    this._failPending("connection closed by the page");
    if (this.state !== "stopped") {
      this._emit("close", { code, reason, advice: ADVICE.STOP, willReconnect: false, retryInMs: null, by: "page" });
      this._setState("stopped", { code, reason, why: reason });
    }
  }

  // Leaving the page: no reconnect. The socket itself is left to the browser,
  // which closes it with 1001 "going away" as the document unloads (HTML's
  // "make disappear"); a script may only send 1000 or 3000-4999.
  _pageHidden(e) {
    if (e && e.persisted) {
      // kept in the back/forward cache: close now, reconnect if the page comes back
      const wasActive = this.state !== "stopped" && this.state !== "idle";
      this.close(1000, "page hidden");
      this._hiddenInCache = wasActive;
      return;
    }
    this._stoppedByPage = true;
    this._clearRetry();
    this._stopHeartbeat();
  }

  _open() {
    const ws = new this._WebSocket(this.url);
    this._ws = ws;
    this._opened = false;
    this._setState("connecting", { attempt: this.attempt });
    this._connectTimer = this._timers.setTimeout(() => {
      this._connectTimer = null;
      if (this._ws !== ws || this._opened) return;
      this._detach();
      try {
        ws.close();
      } catch (e) {
        /* already closing */
      }
      this._explainFailure(ws, "no answer to the upgrade within " + this.options.connectTimeoutMs + " ms");
    }, this.options.connectTimeoutMs);
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._opened = true;
      this._clearConnectTimer();
      this._emit("open", {});
    };
    ws.onmessage = (ev) => {
      if (this._ws === ws) this._receive(ev.data);
    };
    // onerror is always followed by onclose: report it, decide nothing here
    ws.onerror = () => {
      if (this._ws === ws) this._emit("error", { opened: this._opened });
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._detach();
      if (!this._opened && ev.code === 1006) this._explainFailure(ws, "connection failed");
      else this._closed({ code: ev.code, reason: ev.reason, wasClean: ev.wasClean, by: ev.code === 1006 ? "network" : "server" });
    };
  }

  // Unhooks the current socket so nothing it does later counts; returns it.
  _detach() {
    const ws = this._ws;
    this._ws = null;
    this._clearConnectTimer();
    this._stopHeartbeat();
    if (ws) ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    if (this.state === "open" || this.state === "connecting") this.session = null;
    return ws;
  }

  // The upgrade failed before open: ask the server why, with the same credentials.
  async _explainFailure(ws, what) {
    let code = 1006;
    let reason = what + " (the server gave no reason)";
    let by = "network";
    if (this._fetch) {
      const timeout = this.options.connectTimeoutMs;
      const abort = typeof AbortController === "function" ? new AbortController() : null;
      const timer = abort ? this._timers.setTimeout(() => abort.abort(), timeout) : null;
      try {
        const res = await this._fetch(verdictUrl(this.url), {
          cache: "no-store",
          credentials: "omit",
          ...(abort ? { signal: abort.signal } : {}),
        });
        const body = await res.json();
        if (body && Number.isInteger(body.code) && body.code > 0) {
          code = body.code;
          reason = String(body.reason || "");
          by = "server";
        } else if (body && body.code === 0) {
          reason = what + " (the server would admit this client: a proxy or the network failed)";
        }
      } catch (e) {
        reason = what + " (the server could not be asked why)";
      } finally {
        if (timer !== null) this._timers.clearTimeout(timer);
      }
    }
    if (this._stoppedByPage || this._ws) return; // closed or reconnected meanwhile
    this._closed({ code, reason, wasClean: false, by, viaHttp: by === "server" });
  }

  // The one place a close is decided: report it, then stop or schedule one reconnect.
  _closed({ code, reason, wasClean, by, viaHttp = false }) {
    let advice = adviceFor(code);
    const wasAdmitted = this.attempt === 0 && this._hadWelcome;
    this._hadWelcome = false;
    // A session lost without the server's word (1006, or declared dead here) stays open
    // on the server until its own heartbeat timeout. With on_repeat = "reject-new" a
    // reconnect meanwhile gets 4001 for that ghost, not for another tab: keep trying
    // with backoff for a while. A first connect's 4001 (another tab) still stops.
    const now = this._now();
    if (wasAdmitted && (code === 1006 || (code === 4100 && by === "client")))
      this._ghostUntil = now + (this.options.ghostWindowMs ?? 3 * (this._lastHeartbeatMs || 25000));
    const ghost = code === 4001 && this._ghostUntil !== null && now < this._ghostUntil;
    if (ghost) advice = ADVICE.BACKOFF;
    this._failPending("connection closed (" + code + " " + reason + ")");
    if (this._stoppedByPage) return;
    let retryInMs = null;
    if (advice === ADVICE.NOW && wasAdmitted) retryInMs = 0;
    else if (advice !== ADVICE.STOP) retryInMs = backoffDelay(this.attempt, this.options.reconnect, this._random);
    const willReconnect = retryInMs !== null;
    if (willReconnect) this.attempt++;
    this._emit("close", {
      code, reason, advice, willReconnect, retryInMs, wasClean: !!wasClean, by, viaHttp, ...(ghost ? { ghost } : {}),
    });
    if (!willReconnect) {
      this._setState("stopped", { code, reason, why: code + " " + reason });
      return;
    }
    this._scheduleRetry(retryInMs);
  }

  _scheduleRetry(ms) {
    this._clearRetry();
    this._retryTimer = this._timers.setTimeout(() => {
      this._retryTimer = null;
      this._open();
    }, ms);
    // offline: the wait ends at the "online" event, or with the timer, whichever comes first
    const offline = !!this._navigator && this._navigator.onLine === false;
    this._setState("waiting", { retryInMs: ms, attempt: this.attempt, ...(offline ? { offline } : {}) });
  }

  _reconnectNow() {
    this._clearRetry();
    this._open();
  }

  _clearRetry() {
    if (this._retryTimer !== null) this._timers.clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }

  _clearConnectTimer() {
    if (this._connectTimer !== null) this._timers.clearTimeout(this._connectTimer);
    this._connectTimer = null;
  }

  // ---- app-level heartbeat: a browser cannot see WebSocket pings ----
  _armHeartbeat() {
    this._stopHeartbeat();
    const interval = this.session && this.session.heartbeat_ms;
    if (!interval) return;
    this._heartbeatTimer = this._timers.setTimeout(() => {
      const ws = this._ws;
      if (!ws) return;
      try {
        ws.send("ping");
      } catch (e) {
        /* the close event follows */
      }
      this._heartbeatTimer = this._timers.setTimeout(() => this._dead(ws), this.options.pongTimeoutMs);
    }, interval);
  }

  _stopHeartbeat() {
    if (this._heartbeatTimer !== null) this._timers.clearTimeout(this._heartbeatTimer);
    this._heartbeatTimer = null;
  }

  // Nothing came back within heartbeat_ms + pongTimeoutMs: the connection is dead.
  _dead(ws) {
    this._heartbeatTimer = null;
    if (this._ws !== ws) return;
    const interval = this.session ? this.session.heartbeat_ms : 0;
    this._detach();
    try {
      ws.close(4100, "heartbeat timeout");
    } catch (e) {
      /* closing already */
    }
    this._closed({
      code: 4100,
      reason: "heartbeat timeout (nothing for " + interval + " ms, then no pong within " + this.options.pongTimeoutMs + " ms)",
      wasClean: false,
      by: "client",
    });
  }

  // ---- receiving ----
  _receive(data) {
    this._armHeartbeat();
    if (data === "pong") return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (e) {
      this._emit("error", { message: "not JSON: " + String(data).slice(0, 80) });
      return;
    }
    switch (msg.type) {
      case "welcome":
        this.session = msg;
        this._hadWelcome = true;
        this._ghostUntil = null;
        this._lastHeartbeatMs = msg.heartbeat_ms;
        this.attempt = 0;
        this._armHeartbeat();
        this._setState("open", { session: msg.session });
        this._emit("welcome", msg);
        this._restoreSubscriptions();
        return;
      case "ack":
      case "error":
      case "pong":
        if (msg.id !== undefined && this._pending.has(msg.id)) {
          const p = this._pending.get(msg.id);
          this._pending.delete(msg.id);
          if (msg.type === "error") p.reject(Object.assign(new Error(msg.message || msg.code), { reply: msg }));
          else p.resolve(msg);
          return;
        }
        if (msg.type === "error") this._emit("error", { reply: msg });
        return;
      case "message":
        if (typeof msg.channel === "string") this._track(msg);
        this._emit("message", msg);
        return;
      default:
        this._emit("message", msg);
    }
  }

  // A channel's seq goes up by one per message: a jump is a gap the page should know of.
  _track(msg) {
    const ch = this._channels.get(msg.channel);
    if (!ch || !Number.isInteger(msg.seq)) return;
    if (msg.epoch !== undefined && ch.epoch !== undefined && msg.epoch !== ch.epoch) ch.lastSeq = null;
    if (msg.epoch !== undefined) ch.epoch = msg.epoch;
    if (ch.lastSeq !== null && msg.seq > ch.lastSeq + 1)
      this._emit("gap", { channel: msg.channel, afterSeq: ch.lastSeq, missed: msg.seq - ch.lastSeq - 1, seq: msg.seq });
    else if (ch.lastSeq !== null && msg.seq <= ch.lastSeq)
      this._emit("gap", { channel: msg.channel, afterSeq: ch.lastSeq, missed: null, seq: msg.seq, restarted: true });
    ch.lastSeq = msg.seq;
  }

  // ---- requests: promises settled by the ack or error with the same id ----
  _request(request) {
    const ws = this._ws;
    if (!ws || this.state !== "open") return Promise.reject(new Error("not connected (" + this.state + ")"));
    const id = this._nextId++;
    const full = { ...request, id };
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject, request: full });
      ws.send(JSON.stringify(full));
    });
  }

  _failPending(why) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) p.reject(new Error(why));
  }

  // The subscribe request for a channel. Once the server has told its position
  // (an ack's epoch and seq, then each message's seq), a subscribe asks to
  // recover from it: the server replays what was missed when its history still
  // holds it, and says so in the ack ("recovered").
  _subscribeRequest(channel, ch) {
    if (ch && typeof ch.epoch === "string" && Number.isInteger(ch.lastSeq))
      return { type: "subscribe", channel, since: { epoch: ch.epoch, seq: ch.lastSeq } };
    return { type: "subscribe", channel };
  }

  // Subscribes now, or at the next welcome when not connected; kept across reconnects.
  subscribe(channel) {
    let ch = this._channels.get(channel);
    if (!ch) {
      ch = { lastSeq: null, epoch: undefined, waiters: [] };
      this._channels.set(channel, ch);
    }
    if (this.state !== "open") return new Promise((resolve, reject) => ch.waiters.push({ resolve, reject }));
    return this._sendSubscribe(channel, ch);
  }

  _sendSubscribe(channel, ch) {
    return this._request(this._subscribeRequest(channel, ch)).then(
      (ack) => {
        ch.acked = true;
        // the first ack gives the position: messages from here on are numbered after it
        if (ch.epoch === undefined && typeof ack.epoch === "string" && Number.isInteger(ack.seq)) {
          ch.epoch = ack.epoch;
          ch.lastSeq = ack.seq;
        }
        this._settleWaiters(ch, ack, null);
        return ack;
      },
      (err) => {
        if (err.reply) {
          this._channels.delete(channel); // refused (forbidden): not restored later
          this._settleWaiters(ch, null, err);
        }
        throw err;
      }
    );
  }

  _settleWaiters(ch, ack, err) {
    const waiters = ch.waiters;
    ch.waiters = [];
    for (const w of waiters) (err ? w.reject(err) : w.resolve(ack));
  }

  // After a welcome: subscribe again to every channel kept, with "since" (the
  // last position seen). "restored" tells the page whether the server recovered
  // what was missed (recovered: true: it follows the ack, in order, before any
  // live message). When it could not (history too short or expired, or another
  // epoch: the channel started again, e.g. after a server restart), "gap" says
  // so at once, from the ack's epoch and seq.
  _restoreSubscriptions() {
    for (const [channel, ch] of this._channels) {
      const wasSubscribed = ch.acked === true;
      this._sendSubscribe(channel, ch).then(
        (ack) => {
          if (!wasSubscribed) return;
          const recovered = ack.recovered === true;
          this._emit("restored", { channel, lastSeq: ch.lastSeq, recovered, ack });
          if (recovered || !Number.isInteger(ack.seq)) return;
          if (ack.epoch !== undefined && ack.epoch !== ch.epoch) {
            this._emit("gap", { channel, afterSeq: ch.lastSeq, missed: null, seq: ack.seq, restarted: true });
            ch.epoch = ack.epoch;
          } else if (ch.lastSeq !== null && ack.seq > ch.lastSeq) {
            this._emit("gap", { channel, afterSeq: ch.lastSeq, missed: ack.seq - ch.lastSeq, seq: ack.seq });
          }
          ch.lastSeq = ack.seq;
        },
        () => {}
      );
    }
  }

  unsubscribe(channel) {
    const ch = this._channels.get(channel);
    this._channels.delete(channel);
    if (ch) this._settleWaiters(ch, null, new Error("unsubscribed"));
    if (this.state !== "open") return Promise.resolve({ type: "ack" });
    return this._request({ type: "unsubscribe", channel });
  }

  publish(channel, data) {
    return this._request({ type: "publish", channel, data });
  }

  send(to, data) {
    return this._request({ type: "send", to, data });
  }

  // The channels this client keeps subscribed, with the last seq seen on each.
  channels() {
    return [...this._channels].map(([channel, ch]) => ({ channel, lastSeq: ch.lastSeq }));
  }
}
