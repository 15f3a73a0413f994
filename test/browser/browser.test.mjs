// The browser client (www/wsgate.js) and the demo page (www/index.html) in
// Debian's Chromium, headless, against the real wsgate: a page always learns
// why it was refused or dropped, and reconnects only when the close code says
// so. Each test saves a screenshot of the demo page under build/.
//
//   node --test test/browser/ -- --binary build/wsgate    (or WSGATE_BINARY=...)
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { loadClient } from "../js/load-client.mjs";
import {
  Nginx, Relay, TOKENS, Wsgate, demoUrl, events, genCerts, launchBrowser, screenshot, sleep, waitForEvent,
} from "./harness.mjs";

const { ADVICE, CLOSE_POLICY, adviceFor } = await loadClient();

let browser;
const cleanups = [];
let workdir;

before(async () => {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "wsgate-browser-"));
  browser = await launchBrowser();
});

after(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
  if (browser) await browser.close();
  fs.rmSync(workdir, { recursive: true, force: true });
});

// A wsgate for one test; stopped at the end, and it must exit 0 and never log a token.
async function startWsgate(t, overrides = {}) {
  const server = await new Wsgate(workdir, overrides).init();
  await server.start();
  t.after(async () => {
    const code = await server.stop();
    assert.equal(code, 0, "wsgate exit code after SIGTERM; log:\n" + server.log());
    for (const token of Object.values(TOKENS)) assert.ok(!server.log().includes(token), "a token in the log");
  });
  return server;
}

async function newPage(t) {
  const page = await browser.context.newPage();
  t.after(() => page.close().catch(() => {}));
  return page;
}

const count = async (page, type, field, value) =>
  (await events(page, type)).filter((e) => field === undefined || e[field] === value).length;

test("the client's reconnect policy is the server's close-code table", async (t) => {
  const server = await startWsgate(t);
  const res = await fetch(server.url("/close-codes"));
  assert.equal(res.status, 200);
  const table = await res.json();
  assert.ok(table.close_codes.length >= 16);
  for (const { code, advice } of table.close_codes) assert.equal(adviceFor(code), advice, `code ${code}`);
  const ranges = table.ranges.map(({ codes, advice }) => {
    const [from, to] = codes.split("-").map(Number);
    return { from, to, advice };
  });
  assert.deepEqual(CLOSE_POLICY.ranges.map((r) => ({ ...r })), ranges);
  for (const { from, to, advice } of ranges)
    for (const code of [from, from + 1, Math.floor((from + to) / 2), to]) assert.equal(adviceFor(code), advice);
  // codes of the issue that the server never sends itself
  assert.equal(adviceFor(1006), ADVICE.BACKOFF);
  assert.equal(adviceFor(1012), ADVICE.BACKOFF);
});

test("two pages, same token and device: the second gets 4001 and stops, the first keeps working", async (t) => {
  const server = await startWsgate(t);
  const first = await newPage(t);
  await first.goto(demoUrl(server.url(""), { token: TOKENS.alice, device: "tab", subscribe: "1", channel: "news" }));
  await waitForEvent(first, { type: "welcome" });
  await waitForEvent(first, { type: "ack", request: "subscribe" });

  const second = await newPage(t);
  await second.goto(demoUrl(server.url(""), { token: TOKENS.alice, device: "tab", backoffBaseMs: "200" }));
  const close = await waitForEvent(second, { type: "close" });
  assert.equal(close.code, 4001);
  assert.equal(close.reason, "repeat connect channel");
  assert.equal(close.advice, ADVICE.STOP);
  assert.equal(close.willReconnect, false);
  await waitForEvent(second, { type: "state", state: "stopped" });
  assert.equal(await second.textContent("#state"), "stopped: 4001 repeat connect channel");
  await sleep(1000); // a blind client would be back by now
  assert.equal(await count(second, "state", "state", "connecting"), 1, "no second attempt");
  assert.equal(await count(second, "close"), 1);

  const published = await server.publish("news", { headline: "still here" });
  assert.deepEqual(published, { status: 200, body: { delivered: 1, seq: 1 } });
  const message = await waitForEvent(first, { type: "message", channel: "news" });
  assert.deepEqual(message.data, { headline: "still here" });
  assert.equal(await count(first, "close"), 0);
  assert.match(await first.textContent("#state"), /^open \(session [0-9a-f]{16}, alice\/tab\)$/);
  await screenshot(first, "repeat-connect-first");
  await screenshot(second, "repeat-connect-second");
  assert.equal(server.logLines("session_open").length, 1);
});

test("replace-old: the first page gets 4002 and stays stopped", async (t) => {
  const server = await startWsgate(t, { sessions: { on_repeat: "replace-old" } });
  const first = await newPage(t);
  await first.goto(demoUrl(server.url(""), { token: TOKENS.alice, device: "tab", backoffBaseMs: "200" }));
  await waitForEvent(first, { type: "welcome" });
  const second = await newPage(t);
  await second.goto(demoUrl(server.url(""), { token: TOKENS.alice, device: "tab" }));
  await waitForEvent(second, { type: "welcome" });
  const close = await waitForEvent(first, { type: "close" });
  assert.deepEqual([close.code, close.reason, close.willReconnect], [4002, "replaced by new connection", false]);
  await sleep(1000);
  assert.equal(await count(first, "state", "state", "connecting"), 1, "the replaced page does not come back");
  assert.equal(await first.textContent("#state"), "stopped: 4002 replaced by new connection");
  assert.equal(await count(second, "close"), 0);
  await screenshot(first, "replace-old-first");
});

for (const reject of ["http", "close"]) {
  test(`wrong token with reject = "${reject}": 4003 "invalid token", not 1006, and stop`, async (t) => {
    const server = await startWsgate(t, { auth: { reject } });
    const page = await newPage(t);
    await page.goto(demoUrl(server.url(""), { token: "wrong-token", device: "d1", backoffBaseMs: "200" }));
    const close = await waitForEvent(page, { type: "close" });
    assert.deepEqual([close.code, close.reason, close.advice, close.willReconnect], [4003, "invalid token", ADVICE.STOP, false]);
    assert.equal(close.viaHttp, reject === "http", "asked over HTTP only when the upgrade was refused");
    await sleep(800);
    assert.equal(await count(page, "state", "state", "connecting"), 1);
    assert.equal(await page.textContent("#state"), "stopped: 4003 invalid token");
    await screenshot(page, `invalid-token-reject-${reject}`);
    const metrics = await (await fetch(server.url("/metrics"))).text();
    assert.match(metrics, new RegExp(`\\nwsgate_verdict_queries_total\\{outcome="invalid_token"\\} ${reject === "http" ? 1 : 0}\\n`));
    assert.match(metrics, /\nwsgate_handshakes_total\{outcome="invalid_token"\} 1\n/);
  });
}

test("invalid device id: 4000", async (t) => {
  const server = await startWsgate(t);
  const page = await newPage(t);
  await page.goto(demoUrl(server.url(""), { token: TOKENS.alice, device: "bad device!" }));
  const close = await waitForEvent(page, { type: "close" });
  assert.deepEqual([close.code, close.reason, close.willReconnect, close.viaHttp], [4000, "invalid device id", false, true]);
  assert.equal(await page.textContent("#state"), "stopped: 4000 invalid device id");
  await screenshot(page, "invalid-device");
});

test("SIGTERM and restart: 1001, backoff, subscription restored, a message after the restart arrives", async (t) => {
  const server = await startWsgate(t);
  const page = await newPage(t);
  await page.goto(demoUrl(server.url(""), {
    token: TOKENS.alice, device: "d1", subscribe: "1", channel: "news", backoffBaseMs: "300", backoffMaxMs: "1500",
  }));
  await waitForEvent(page, { type: "ack", request: "subscribe" });
  await server.publish("news", "before");
  await waitForEvent(page, { type: "message", data: "before" });

  server.signal("SIGTERM");
  const close = await waitForEvent(page, { type: "close" });
  assert.deepEqual([close.code, close.reason, close.advice, close.willReconnect], [1001, "server shutting down", ADVICE.BACKOFF, true]);
  assert.ok(close.retryInMs >= 0 && close.retryInMs < 300, "full jitter under the first ceiling: " + close.retryInMs);
  assert.equal((await server.proc.exited).code, 0);
  await sleep(700); // down for a while: attempts fail and back off
  await server.start();

  const welcomes = await count(page, "welcome");
  const restored = await waitForEvent(page, { type: "restored", channel: "news" }, 15000);
  assert.equal(restored.lastSeq, 1);
  assert.equal(await count(page, "welcome"), welcomes >= 2 ? welcomes : 2);
  const waits = (await events(page, "close")).filter((e) => e.willReconnect).map((e) => e.retryInMs);
  assert.ok(waits.length >= 2, "attempts while the server was down: " + JSON.stringify(waits));
  assert.equal(new Set((await events(page, "state")).filter((e) => e.state === "waiting").map((e) => e.attempt)).size, waits.length);
  // a new incarnation (its history went with the process): not recovered, and the ack says so at once
  assert.equal(restored.recovered, false);
  const gap = await waitForEvent(page, { type: "gap", channel: "news" });
  assert.deepEqual([gap.restarted, gap.seq], [true, 0]);
  assert.deepEqual(await server.publish("news", "after"), { status: 200, body: { delivered: 1, seq: 1 } });
  const message = await waitForEvent(page, { type: "message", data: "after" });
  assert.equal(message.seq, 1, "a new channel after the restart");
  await screenshot(page, "restart");
  assert.equal(server.logLines("session_open").length, 2, "one session per run (the log file is shared)");
});

test("SIGSTOP: the page declares the connection dead within heartbeat_ms + its timeout, and comes back after SIGCONT", async (t) => {
  const heartbeat = 600;
  const pongTimeout = 600;
  const server = await startWsgate(t, { heartbeat: { interval_ms: heartbeat, timeout_ms: 2000 } });
  const page = await newPage(t);
  await page.goto(demoUrl(server.url(""), {
    token: TOKENS.alice, device: "d1", pongTimeoutMs: String(pongTimeout), connectTimeoutMs: "1500", backoffBaseMs: "200", backoffMaxMs: "400",
  }));
  const welcome = await waitForEvent(page, { type: "welcome" });
  assert.equal(welcome.heartbeat_ms, heartbeat);
  await sleep(1500); // heartbeats go both ways while idle: nothing closes
  assert.equal(await count(page, "close"), 0);

  const stoppedAt = await page.evaluate(() => Date.now());
  server.signal("SIGSTOP");
  let resumed = false;
  t.after(() => !resumed && server.signal("SIGCONT"));
  const close = await waitForEvent(page, { type: "close" }, 5000);
  const took = close.t - stoppedAt;
  assert.deepEqual([close.code, close.by, close.willReconnect], [4100, "client", true]);
  assert.ok(took <= heartbeat + pongTimeout + 300, `declared dead after ${took} ms`);
  assert.ok(took >= pongTimeout, `not before the pong timeout: ${took} ms`);
  await screenshot(page, "sigstop-dead");
  const seen = (await events(page)).length; // no welcome can come while wsgate is stopped

  server.signal("SIGCONT");
  resumed = true;
  const back = await waitForEvent(page, { type: "welcome" }, 10000, seen);
  assert.equal(back.user, "alice");
  for (const e of await events(page, "close")) assert.ok([4100, 1006].includes(e.code), JSON.stringify(e));
  await waitForEvent(page, { type: "state", state: "open" }, 5000, seen);
  // the server took the dead connection's close frame first: no 4001 for the new one
  assert.match(await server.waitForLog(/event=session_close /), / code=4100 reason="heartbeat timeout" by=client /);
  await screenshot(page, "sigstop-back");
});

test("the network path dies: 1006, then 4001 for the ghost session is retried until wsgate times it out", async (t) => {
  const server = await startWsgate(t, { heartbeat: { interval_ms: 500, timeout_ms: 500 } });
  const relay = await new Relay(server.port).start();
  t.after(() => relay.stop());
  const page = await newPage(t);
  await page.goto(demoUrl(server.url(""), {
    token: TOKENS.alice, device: "d1", url: `ws://127.0.0.1:${relay.port}/ws`, backoffBaseMs: "150", backoffMaxMs: "300",
  }));
  await waitForEvent(page, { type: "welcome" });
  relay.dropClients();
  const lost = await waitForEvent(page, { type: "close" });
  assert.deepEqual([lost.code, lost.by, lost.willReconnect], [1006, "network", true]);
  const ghost = await waitForEvent(page, { type: "close", code: 4001 }, 5000);
  assert.deepEqual([ghost.reason, ghost.ghost, ghost.advice, ghost.willReconnect], ["repeat connect channel", true, ADVICE.BACKOFF, true]);
  await waitForEvent(page, { type: "welcome" }, 5000, (await events(page)).findIndex((e) => e.code === 4001));
  assert.match(await server.waitForLog(/event=session_close .* code=4100 /), / reason="heartbeat timeout" by=server /);
  assert.equal(await page.evaluate(() => window.demo.client.state), "open");
  await screenshot(page, "ghost-session");
});

test("the network path dies: what was published meanwhile is recovered after the reconnect, in order, then live", async (t) => {
  const server = await startWsgate(t, { heartbeat: { interval_ms: 500, timeout_ms: 500 } });
  const relay = await new Relay(server.port).start();
  t.after(() => relay.stop());
  const page = await newPage(t);
  await page.goto(demoUrl(server.url(""), {
    token: TOKENS.alice, device: "d1", url: `ws://127.0.0.1:${relay.port}/ws`, subscribe: "1", channel: "news",
    backoffBaseMs: "150", backoffMaxMs: "300",
  }));
  await waitForEvent(page, { type: "ack", request: "subscribe" });
  assert.equal((await server.publish("news", "before")).body.seq, 1);
  await waitForEvent(page, { type: "message", data: "before" });

  relay.dropClients(); // wsgate is not told: the session it holds is a ghost until its heartbeat timeout
  const lost = await waitForEvent(page, { type: "close" });
  assert.deepEqual([lost.code, lost.willReconnect], [1006, true]);
  for (let i = 0; i < 5; i++) {
    const { status, body } = await server.publish("news", `missed ${i}`);
    assert.deepEqual([status, body.seq], [200, i + 2]);
  }

  const restored = await waitForEvent(page, { type: "restored", channel: "news" }, 10000);
  assert.deepEqual([restored.recovered, restored.lastSeq, restored.ack.seq], [true, 1, 6]);
  await waitForEvent(page, { type: "message", data: "missed 4" });
  assert.equal((await server.publish("news", "live")).body.seq, 7);
  await waitForEvent(page, { type: "message", data: "live" });
  const got = (await events(page, "message")).map((e) => [e.seq, e.data]);
  assert.deepEqual(got, [[1, "before"], [2, "missed 0"], [3, "missed 1"], [4, "missed 2"], [5, "missed 3"], [6, "missed 4"], [7, "live"]]);
  assert.equal(await count(page, "gap"), 0, "no gap: everything missed was replayed");
  assert.match(await page.textContent("#log"), /"recovered":true/);
  await screenshot(page, "recovered");
});

test("offline, then online: the online event ends the reconnect wait at once", async (t) => {
  const server = await startWsgate(t);
  const page = await newPage(t);
  await page.goto(demoUrl(server.url(""), { token: TOKENS.alice, device: "d1", backoffBaseMs: "600000", backoffMaxMs: "600000" }));
  await waitForEvent(page, { type: "welcome" });
  server.signal("SIGTERM");
  const close = await waitForEvent(page, { type: "close" });
  assert.equal(close.code, 1001);
  assert.equal((await server.proc.exited).code, 0);
  await server.start();
  await browser.context.setOffline(true);
  t.after(() => browser.context.setOffline(false));
  assert.equal(await page.evaluate(() => navigator.onLine), false);
  const seen = (await events(page)).length;
  const onlineAt = Date.now();
  await browser.context.setOffline(false);
  const welcome = await waitForEvent(page, { type: "welcome" }, 5000, seen);
  const waited = welcome.t - onlineAt;
  assert.ok(waited < 2000, `reconnected ${waited} ms after the online event`);
  if (close.retryInMs > waited + 1000) t.diagnostic(`the timer alone would have waited ${close.retryInMs} ms`);
  else t.diagnostic(`jitter drew a short wait (${close.retryInMs} ms): this run does not tell the event from the timer`);
  await screenshot(page, "online-again");
});

test("leaving the page closes the socket with 1001 from the browser: the server logs by=client", async (t) => {
  const server = await startWsgate(t);
  const page = await newPage(t);
  await page.goto(demoUrl(server.url(""), { token: TOKENS.alice, device: "d1" }));
  await waitForEvent(page, { type: "welcome" });
  await screenshot(page, "pagehide-before");
  await page.goto("about:blank");
  const line = await server.waitForLog(/event=session_close /);
  assert.match(line, / code=1001 reason="[^"]*" by=client /);
});

test("a page of another origin reads the refusal reason through CORS", async (t) => {
  const server = await startWsgate(t);
  const page = await newPage(t);
  // the page's origin is http://localhost:PORT, the WebSocket's http://127.0.0.1:PORT
  await page.goto(demoUrl(`http://localhost:${server.port}`, { token: "wrong-token", url: `ws://127.0.0.1:${server.port}/ws` }));
  const close = await waitForEvent(page, { type: "close" });
  assert.deepEqual([close.code, close.reason, close.viaHttp], [4003, "invalid token", true]);
  await screenshot(page, "cross-origin");

  // an origin outside auth.origins gets no CORS answer: the page cannot read why (by design)
  const strict = await startWsgate(t, { auth: { origins: ["https://app.example"] } });
  const other = await newPage(t);
  await other.goto(demoUrl(`http://localhost:${strict.port}`, { token: TOKENS.alice, url: `ws://127.0.0.1:${strict.port}/ws` }));
  const blind = await waitForEvent(other, { type: "close" });
  assert.deepEqual([blind.code, blind.viaHttp, blind.willReconnect], [1006, false, true]);
  assert.match(blind.reason, /could not be asked why/);
  assert.match(await strict.waitForLog(/event=handshake_refused /), / code=4003 reason="origin not allowed" /);
});

describe("through the shipped nginx config over wss", () => {
  let certdir;
  before(() => {
    certdir = genCerts(fs.mkdtempSync(path.join(os.tmpdir(), "wsgate-browser-certs-")));
  });
  after(() => fs.rmSync(certdir, { recursive: true, force: true }));

  test("the page loads over https, connects over wss, and learns a refusal's reason through nginx", async (t) => {
    const server = await startWsgate(t, { proxy: { trusted: ["127.0.0.1"] } });
    const nginx = await new Nginx(workdir, certdir, server.port).start();
    t.after(() => nginx.stop());
    const base = `https://127.0.0.1:${nginx.port}`;

    const page = await newPage(t);
    await page.goto(demoUrl(base, { token: TOKENS.alice, device: "d1", subscribe: "1", channel: "news" }));
    assert.equal(await page.inputValue("#url"), `wss://127.0.0.1:${nginx.port}/ws`);
    await waitForEvent(page, { type: "ack", request: "subscribe" });
    await server.publish("news", "via nginx");
    await waitForEvent(page, { type: "message", data: "via nginx" });
    await screenshot(page, "nginx-wss");

    const refused = await newPage(t);
    await refused.goto(demoUrl(base, { token: "wrong-token", device: "d1" }));
    const close = await waitForEvent(refused, { type: "close" });
    assert.deepEqual([close.code, close.reason, close.willReconnect, close.viaHttp], [4003, "invalid token", false, true]);
    await screenshot(refused, "nginx-wss-refused");
    assert.match(await server.waitForLog(/event=handshake_refused /), / via=127\.0\.0\.1 code=4003 /);
  });
});
