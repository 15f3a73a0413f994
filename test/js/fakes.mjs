// Fakes for testing www/wsgate.js in Node without a browser or a server:
// a virtual clock, a scripted WebSocket, a scripted fetch, and a window.

export class FakeClock {
  constructor() {
    this.now = 0;
    this.timers = new Map(); // id -> { at, fn }
    this.nextId = 1;
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { at: this.now + Math.max(0, ms | 0), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
  }

  get pending() {
    return this.timers.size;
  }

  // Runs every timer due within ms, in deadline order, advancing the clock.
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.timers) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
      await flush();
    }
    this.now = end;
    await flush();
  }
}

// Lets promise callbacks (microtasks and a few macrotask turns) run.
export async function flush() {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

export function makeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closedWith = null;
      this.readyState = 0;
      sockets.push(this);
    }
    send(data) {
      this.sent.push(data);
    }
    close(code, reason) {
      if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999))
        throw new Error("InvalidAccessError: close code " + code); // as browsers do
      this.closedWith = { code, reason };
    }
    // scripted server side
    open() {
      this.readyState = 1;
      this.onopen && this.onopen({});
    }
    receive(data) {
      this.onmessage && this.onmessage({ data: typeof data === "string" ? data : JSON.stringify(data) });
    }
    welcome(heartbeat_ms = 1000) {
      this.receive({ type: "welcome", session: "0123456789abcdef", user: "alice", device: "d1", heartbeat_ms });
    }
    error() {
      this.onerror && this.onerror({});
    }
    serverClose(code, reason = "", wasClean = true) {
      this.readyState = 3;
      this.onclose && this.onclose({ code, reason, wasClean });
    }
  }
  return { FakeWebSocket, sockets };
}

export function makeFetch(answers) {
  const calls = [];
  async function fetch(url, init) {
    calls.push({ url, init });
    const answer = typeof answers === "function" ? answers(url) : answers.shift();
    if (answer instanceof Error) throw answer;
    return { status: answer.status, json: async () => answer.body };
  }
  return { fetch, calls };
}

export class FakeWindow {
  constructor() {
    this.listeners = {};
  }
  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }
  dispatch(type, event = {}) {
    for (const fn of this.listeners[type] || []) fn(event);
  }
}
