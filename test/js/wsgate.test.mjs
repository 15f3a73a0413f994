// Unit tests of www/wsgate.js in Node (node --test): the reconnect policy by
// close code, backoff with full jitter, the single reconnect timer whatever
// mix of error and close events arrives, the refusal reason asked over HTTP,
// the app-level heartbeat, requests by id, and subscriptions across reconnects.
import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeClock, FakeWindow, flush, makeFetch, makeWebSocketClass } from "./fakes.mjs";
import { loadClient } from "./load-client.mjs";

const { ADVICE, WsgateClient, adviceFor, backoffDelay, verdictUrl } = await loadClient();

function setup(options = {}, fetchAnswers = []) {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = makeWebSocketClass();
  const { fetch, calls } = makeFetch(fetchAnswers);
  const win = new FakeWindow();
  const events = [];
  const client = new WsgateClient("ws://127.0.0.1:9/ws", {
    token: "alice-secret",
    device: "d1",
    WebSocket: FakeWebSocket,
    fetch,
    timers: clock,
    now: () => clock.now,
    random: () => 0.5,
    window: win,
    navigator: { onLine: true },
    autoConnect: false,
    reconnect: { baseMs: 1000, maxMs: 8000 },
    pongTimeoutMs: 500,
    connectTimeoutMs: 3000,
    ...options,
  });
  for (const type of ["open", "welcome", "message", "close", "error", "state", "gap", "restored"])
    client.on(type, (detail) => events.push({ type, ...detail }));
  const closes = () => events.filter((e) => e.type === "close");
  return { clock, sockets, calls, win, events, client, closes };
}

test("policy: the table of the issue, by code and by range", () => {
  for (const code of [1000, 1002, 1003, 1007, 1009, 4000, 4001, 4002, 4003, 4004, 4005, 4099])
    assert.equal(adviceFor(code), ADVICE.STOP, String(code));
  for (const code of [1001, 1006, 1011, 1012, 1013, 4100, 4108, 4109, 4199])
    assert.equal(adviceFor(code), ADVICE.BACKOFF, String(code));
  for (const code of [4200, 4250, 4299]) assert.equal(adviceFor(code), ADVICE.NOW, String(code));
  for (const code of [4300, 4999, 3000, 1008]) assert.equal(adviceFor(code), ADVICE.STOP, String(code));
});

test("backoff: exponential ceiling, capped, full jitter", () => {
  const cfg = { baseMs: 1000, maxMs: 8000 };
  assert.equal(backoffDelay(0, cfg, () => 0), 0);
  assert.equal(backoffDelay(0, cfg, () => 0.999999), 999);
  assert.equal(backoffDelay(1, cfg, () => 0.999999), 1999);
  assert.equal(backoffDelay(2, cfg, () => 0.5), 2000);
  assert.equal(backoffDelay(3, cfg, () => 0.999999), 7999);
  assert.equal(backoffDelay(10, cfg, () => 0.999999), 7999); // capped
  assert.equal(backoffDelay(1000, cfg, () => 0.5), 4000); // no overflow
});

test("verdict URL: same host, path and query over http(s)", () => {
  assert.equal(verdictUrl("ws://h:8080/ws?token=t&device=d"), "http://h:8080/ws?token=t&device=d");
  assert.equal(verdictUrl("wss://h/live/ws?token=a%20b"), "https://h/live/ws?token=a%20b");
});

test("the URL carries token and device", () => {
  const { client } = setup();
  assert.equal(client.url, "ws://127.0.0.1:9/ws?token=alice-secret&device=d1");
});

test("4001 after open: close event says stop, no timer, state stopped", async () => {
  const { clock, sockets, client, closes } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].serverClose(4001, "repeat connect channel");
  await flush();
  assert.deepEqual(
    closes().map((e) => [e.code, e.reason, e.advice, e.willReconnect, e.retryInMs]),
    [[4001, "repeat connect channel", ADVICE.STOP, false, null]]
  );
  assert.equal(client.state, "stopped");
  assert.equal(clock.pending, 0);
  await clock.advance(60000);
  assert.equal(sockets.length, 1);
});

test("1001: one timer with backoff; error then close schedules one reconnect", async () => {
  const { clock, sockets, client, closes } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  sockets[0].error();
  sockets[0].serverClose(1001, "server shutting down");
  sockets[0].error(); // late events of a socket already handled count for nothing
  sockets[0].serverClose(1006, "");
  await flush();
  assert.equal(closes().length, 1);
  const close = closes()[0];
  assert.deepEqual([close.code, close.advice, close.willReconnect, close.retryInMs], [1001, ADVICE.BACKOFF, true, 500]);
  assert.equal(client.state, "waiting");
  assert.equal(clock.pending, 1, "one reconnect timer");
  await clock.advance(499);
  assert.equal(sockets.length, 1);
  await clock.advance(1);
  assert.equal(sockets.length, 2, "reconnected once");
  assert.equal(client.state, "connecting");
});

test("attempts grow the backoff until a welcome resets it", async () => {
  const { clock, sockets, client, closes, calls } = setup({}, (url) => ({ status: 503, body: { code: 1013, reason: "server at capacity" } }));
  client.connect();
  for (let i = 0; i < 4; i++) {
    sockets[i].error();
    sockets[i].serverClose(1006, "", false);
    await flush();
    assert.equal(clock.pending, 1, "one timer after attempt " + i);
    await clock.advance(closes().at(-1).retryInMs);
  }
  assert.deepEqual(closes().map((e) => [e.code, e.retryInMs]), [[1013, 500], [1013, 1000], [1013, 2000], [1013, 4000]]);
  assert.equal(calls.length, 4);
  sockets[4].open();
  sockets[4].welcome();
  assert.equal(client.attempt, 0);
  sockets[4].serverClose(1001, "server shutting down");
  assert.equal(closes().at(-1).retryInMs, 500);
});

test("refused before open (reject=http): the reason comes from the verdict query, then stop", async () => {
  const { clock, sockets, client, closes, calls } = setup({}, [
    { status: 403, body: { code: 4003, reason: "invalid token" } },
  ]);
  client.connect();
  sockets[0].error();
  sockets[0].serverClose(1006, "", false);
  await flush();
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, "http://127.0.0.1:9/ws?token=alice-secret&device=d1");
  assert.equal(calls[0].init.credentials, "omit");
  assert.deepEqual(
    closes().map((e) => [e.code, e.reason, e.advice, e.willReconnect, e.viaHttp]),
    [[4003, "invalid token", ADVICE.STOP, false, true]]
  );
  assert.equal(client.state, "stopped");
  assert.equal(clock.pending, 0);
});

test("refused before open, server would admit (426): 1006 with backoff", async () => {
  const { clock, sockets, client, closes } = setup({}, [{ status: 426, body: { code: 0, reason: "upgrade required" } }]);
  client.connect();
  sockets[0].serverClose(1006, "", false);
  await flush();
  assert.equal(closes()[0].code, 1006);
  assert.match(closes()[0].reason, /would admit/);
  assert.equal(closes()[0].willReconnect, true);
  assert.equal(clock.pending, 1);
});

test("server unreachable: fetch fails, 1006 with backoff", async () => {
  const { clock, sockets, client, closes } = setup({}, [new TypeError("Failed to fetch")]);
  client.connect();
  sockets[0].serverClose(1006, "", false);
  await flush();
  assert.deepEqual([closes()[0].code, closes()[0].willReconnect], [1006, true]);
  assert.equal(clock.pending, 1);
});

test("4200 reconnects at once after an admitted session, with backoff when it repeats", async () => {
  const { clock, sockets, client, closes } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  sockets[0].serverClose(4200, "server draining, reconnect");
  await flush();
  assert.deepEqual([closes()[0].advice, closes()[0].retryInMs], [ADVICE.NOW, 0]);
  await clock.advance(0);
  assert.equal(sockets.length, 2);
  sockets[1].open();
  sockets[1].serverClose(4200, "server draining, reconnect"); // no welcome in between
  await flush();
  assert.deepEqual([closes()[1].willReconnect, closes()[1].retryInMs], [true, 1000]); // backoff, attempt 1
});

test("online event ends the wait at once; close() while waiting clears the timer", async () => {
  const { clock, sockets, client, win } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  sockets[0].serverClose(1001, "server shutting down");
  await flush();
  assert.equal(clock.pending, 1);
  win.dispatch("online");
  assert.equal(sockets.length, 2);
  assert.equal(clock.pending, 1, "only the connect timeout of the new socket");
  sockets[1].serverClose(1006, "", false); // fails before open: asks why, then waits
  await flush();
  assert.equal(client.state, "waiting");
  client.close();
  assert.equal(client.state, "stopped");
  assert.equal(clock.pending, 0);
  await clock.advance(60000);
  assert.equal(sockets.length, 2);
});

test("heartbeat: ping after heartbeat_ms of silence, dead without a pong", async () => {
  const { clock, sockets, client, closes } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].welcome(1000);
  await clock.advance(999);
  assert.deepEqual(sockets[0].sent, []);
  await clock.advance(1);
  assert.deepEqual(sockets[0].sent, ["ping"]);
  sockets[0].receive("pong");
  await clock.advance(999);
  assert.deepEqual(sockets[0].sent, ["ping"]);
  await clock.advance(1);
  assert.deepEqual(sockets[0].sent, ["ping", "ping"]);
  await clock.advance(499);
  assert.equal(closes().length, 0);
  await clock.advance(1);
  assert.equal(closes().length, 1);
  assert.deepEqual([closes()[0].code, closes()[0].by, closes()[0].willReconnect], [4100, "client", true]);
  assert.deepEqual(sockets[0].closedWith, { code: 4100, reason: "heartbeat timeout" });
  sockets[0].serverClose(1006, "", false); // the dead socket's own close, much later: ignored
  await flush();
  assert.equal(closes().length, 1);
  assert.equal(clock.pending, 1);
});

test("connect timeout: no answer to the upgrade counts as a failure, one timer", async () => {
  const { clock, sockets, client, closes } = setup({}, [new TypeError("Failed to fetch")]);
  client.connect();
  await clock.advance(3000);
  assert.equal(closes().length, 1);
  assert.equal(closes()[0].code, 1006);
  assert.match(closes()[0].reason, /no answer to the upgrade/);
  assert.equal(clock.pending, 1);
});

test("requests: ack and error by id; pending requests fail on close", async () => {
  const { sockets, client } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  const published = client.publish("chat.x", { a: 1 });
  const sent = client.send("bob", "hi");
  const lost = client.publish("chat.y", 2);
  const [p, s, l] = sockets[0].sent.map((t) => JSON.parse(t));
  assert.deepEqual(p, { type: "publish", channel: "chat.x", data: { a: 1 }, id: p.id });
  assert.deepEqual(s, { type: "send", to: "bob", data: "hi", id: s.id });
  sockets[0].receive({ type: "error", id: s.id, code: "forbidden", message: "not allowed" });
  sockets[0].receive({ type: "ack", id: p.id, delivered: 2 });
  assert.deepEqual(await published, { type: "ack", id: p.id, delivered: 2 });
  await assert.rejects(sent, (e) => e.reply.code === "forbidden");
  sockets[0].serverClose(1001, "server shutting down");
  await assert.rejects(lost, /connection closed/);
  assert.ok(l.id);
  await assert.rejects(client.publish("x", 1), /not connected/);
});

test("subscriptions: restored after a reconnect, gaps reported from seq", async () => {
  const { clock, sockets, client, events } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  const sub = client.subscribe("news");
  const req = JSON.parse(sockets[0].sent[0]);
  assert.deepEqual(req, { type: "subscribe", channel: "news", id: req.id });
  sockets[0].receive({ type: "ack", id: req.id });
  await sub;
  sockets[0].receive({ type: "message", channel: "news", from: null, data: 1, seq: 1, ts: 1 });
  sockets[0].receive({ type: "message", channel: "news", from: null, data: 2, seq: 2, ts: 2 });
  sockets[0].receive({ type: "message", channel: "news", from: null, data: 5, seq: 5, ts: 3 });
  assert.deepEqual(
    events.filter((e) => e.type === "gap").map((e) => [e.channel, e.afterSeq, e.missed]),
    [["news", 2, 2]]
  );
  sockets[0].serverClose(1001, "server shutting down");
  await clock.advance(500);
  sockets[1].open();
  sockets[1].welcome();
  const again = JSON.parse(sockets[1].sent[0]);
  assert.deepEqual(again, { type: "subscribe", channel: "news", id: again.id });
  sockets[1].receive({ type: "ack", id: again.id });
  await flush();
  assert.deepEqual(events.filter((e) => e.type === "restored").map((e) => [e.channel, e.lastSeq]), [["news", 5]]);
  // the server restarted: the channel's seq starts again at 1
  sockets[1].receive({ type: "message", channel: "news", from: null, data: "x", seq: 1, ts: 4 });
  const gap = events.filter((e) => e.type === "gap").at(-1);
  assert.deepEqual([gap.afterSeq, gap.missed, gap.restarted], [5, null, true]);
  assert.deepEqual(client.channels(), [{ channel: "news", lastSeq: 1 }]);
});

test("recovery: resubscribes with since after each reconnect, and reports recovered", async () => {
  const { clock, sockets, client, events } = setup();
  const news = (socket, seq) => socket.receive({ type: "message", channel: "news", from: null, data: seq, seq, ts: seq });
  const reconnect = async (i) => {
    sockets[i - 1].serverClose(1001, "server shutting down");
    await clock.advance(500);
    sockets[i].open();
    sockets[i].welcome();
    return JSON.parse(sockets[i].sent[0]);
  };
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  const sub = client.subscribe("news");
  const req = JSON.parse(sockets[0].sent[0]);
  assert.deepEqual(req, { type: "subscribe", channel: "news", id: req.id }); // no position yet
  sockets[0].receive({ type: "ack", id: req.id, epoch: "e1", seq: 3 });
  await sub;
  news(sockets[0], 4);
  news(sockets[0], 5);

  // recovered: the ack, then what was missed, in order; no gap
  let again = await reconnect(1);
  assert.deepEqual(again, { type: "subscribe", channel: "news", since: { epoch: "e1", seq: 5 }, id: again.id });
  sockets[1].receive({ type: "ack", id: again.id, epoch: "e1", seq: 8, recovered: true });
  await flush();
  for (const seq of [6, 7, 8, 9]) news(sockets[1], seq);
  let restored = events.filter((e) => e.type === "restored").at(-1);
  assert.deepEqual([restored.lastSeq, restored.recovered], [5, true]);
  assert.equal(events.filter((e) => e.type === "gap").length, 0);

  // not recovered, same epoch (the history was too short): a gap of what is lost
  again = await reconnect(2);
  assert.deepEqual(again.since, { epoch: "e1", seq: 9 });
  sockets[2].receive({ type: "ack", id: again.id, epoch: "e1", seq: 20, recovered: false });
  await flush();
  let gap = events.filter((e) => e.type === "gap").at(-1);
  assert.deepEqual([gap.afterSeq, gap.missed, gap.seq, gap.restarted], [9, 11, 20, undefined]);
  news(sockets[2], 21);
  assert.equal(events.filter((e) => e.type === "gap").length, 1);

  // not recovered, another epoch (a restart, or the history expired): restarted
  again = await reconnect(3);
  assert.deepEqual(again.since, { epoch: "e1", seq: 21 });
  sockets[3].receive({ type: "ack", id: again.id, epoch: "e2", seq: 0, recovered: false });
  await flush();
  restored = events.filter((e) => e.type === "restored").at(-1);
  assert.deepEqual([restored.lastSeq, restored.recovered], [21, false]);
  gap = events.filter((e) => e.type === "gap").at(-1);
  assert.deepEqual([gap.afterSeq, gap.seq, gap.restarted], [21, 0, true]);
  news(sockets[3], 1);
  assert.equal(events.filter((e) => e.type === "gap").length, 2);
  again = await reconnect(4);
  assert.deepEqual(again.since, { epoch: "e2", seq: 1 });
});

test("subscribe before connecting resolves at the welcome; a refused one is not kept", async () => {
  const { sockets, client } = setup();
  const early = client.subscribe("news");
  const denied = client.subscribe("secret");
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  const [a, b] = sockets[0].sent.map((t) => JSON.parse(t));
  sockets[0].receive({ type: "ack", id: a.id });
  sockets[0].receive({ type: "error", id: b.id, code: "forbidden", message: "not allowed to subscribe" });
  assert.equal((await early).type, "ack");
  await assert.rejects(denied, /not allowed/);
  assert.deepEqual(client.channels().map((c) => c.channel), ["news"]);
});

test("pagehide: no reconnect after the page goes away", async () => {
  const { clock, sockets, client, win } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  win.dispatch("pagehide", { persisted: false });
  sockets[0].serverClose(1001, "going away");
  await clock.advance(60000);
  assert.equal(sockets.length, 1);
  assert.equal(clock.pending, 0);
});

test("pagehide into the back/forward cache closes now; pageshow from it reconnects", async () => {
  const { sockets, client, win } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  win.dispatch("pagehide", { persisted: true });
  assert.deepEqual(sockets[0].closedWith, { code: 1000, reason: "page hidden" });
  assert.equal(client.state, "stopped");
  win.dispatch("pageshow", { persisted: true });
  assert.equal(sockets.length, 2);
  assert.equal(client.state, "connecting");
});

test("offline: the waiting state says so, and the online event ends the wait", async () => {
  const nav = { onLine: false };
  const { sockets, client, win, events, clock } = setup({ navigator: nav });
  client.connect();
  sockets[0].open();
  sockets[0].welcome();
  sockets[0].serverClose(1006, "", false);
  await flush();
  const waiting = events.filter((e) => e.type === "state" && e.state === "waiting");
  assert.deepEqual(waiting.map((e) => e.offline), [true]);
  nav.onLine = true;
  win.dispatch("online");
  assert.equal(sockets.length, 2);
  assert.equal(clock.pending, 1, "the retry timer is gone; only the new connect timeout");
});

test("4001 right after losing our own session is that ghost: backoff until the window ends, then stop", async () => {
  const { clock, sockets, client, closes } = setup({}, () => ({ status: 426, body: { code: 0, reason: "upgrade required" } }));
  client.connect();
  sockets[0].open();
  sockets[0].welcome(1000); // ghost window: 3 x 1000 ms
  sockets[0].serverClose(1006, "", false); // the network went away; the server has not noticed
  await flush();
  await clock.advance(closes()[0].retryInMs);
  sockets[1].open();
  sockets[1].serverClose(4001, "repeat connect channel");
  await flush();
  assert.deepEqual(
    [closes()[1].code, closes()[1].advice, closes()[1].willReconnect, closes()[1].ghost],
    [4001, ADVICE.BACKOFF, true, true]
  );
  await clock.advance(3000); // past the window
  const last = sockets.at(-1);
  last.open();
  last.serverClose(4001, "repeat connect channel");
  await flush();
  assert.deepEqual([closes().at(-1).willReconnect, closes().at(-1).ghost], [false, undefined]);
  assert.equal(client.state, "stopped");
});

test("a 4001 after a clean server close is another tab's: stop at once", async () => {
  const { clock, sockets, client, closes } = setup();
  client.connect();
  sockets[0].open();
  sockets[0].welcome(1000);
  sockets[0].serverClose(1001, "server shutting down");
  await clock.advance(closes()[0].retryInMs);
  sockets[1].open();
  sockets[1].serverClose(4001, "repeat connect channel");
  await flush();
  assert.deepEqual([closes()[1].willReconnect, closes()[1].ghost], [false, undefined]);
});
