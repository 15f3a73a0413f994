// The browser's view of a cluster (issues 17 and 18): two wsgate nodes share
// one port (listen.reuse_port) and a Redis; the backend publishes through a
// third. The node a page is on hangs and is killed; the page reconnects,
// lands on the other node, and recovers in order what was published while it
// was away, because the history is in Redis.
//
//   node --test test/browser/cluster.test.mjs -- --binary build/wsgate
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  HOST, TOKENS, Wsgate, demoUrl, events, freePort, launchBrowser, screenshot, sleep, waitForEvent,
} from "./harness.mjs";

const REDIS_SERVER = "/usr/bin/redis-server";
let browser;
let workdir;

before(async () => {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "wsgate-browser-cluster-"));
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  fs.rmSync(workdir, { recursive: true, force: true });
});

// A throwaway redis-server on a free loopback port, no persistence.
async function startRedis(t) {
  const port = await freePort();
  const proc = spawn(REDIS_SERVER, ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no",
    "--dir", workdir], { stdio: "ignore" });
  t.after(() => proc.kill("SIGKILL"));
  for (const deadline = Date.now() + 5000; ; await sleep(20)) {
    const up = await new Promise((resolve) => {
      const sock = net.connect({ host: HOST, port }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.on("error", () => resolve(false));
    });
    if (up) return port;
    if (Date.now() > deadline) throw new Error("redis-server did not start");
  }
}

// A node of the cluster: on a port of its own (port 0), or sharing port with others (reuse_port).
async function startNode(t, name, redisPort, port, reusePort = true) {
  const node = new Wsgate(workdir, {
    listen: { reuse_port: reusePort, ...(port ? { port } : {}) },
    sessions: { on_repeat: "replace-old" },
    cluster: { redis: `redis://${HOST}:${redisPort}/0`, node: name, claim_ttl_ms: 1500 },
  });
  await node.init();
  if (port) node.port = port;
  await node.start();
  await node.waitForLog(/event=cluster_redis_up /);
  t.after(async () => {
    const code = await node.stop();
    if (!node.killed) assert.equal(code, 0, `node ${name}: exit code after SIGTERM; log:\n` + node.log());
    for (const token of Object.values(TOKENS)) assert.ok(!node.log().includes(token), "a token in the log");
  });
  return node;
}

test("the page's node is killed: it reconnects to the other node and recovers what it missed from Redis", async (t) => {
  if (!fs.existsSync(REDIS_SERVER)) return t.skip("redis-server not installed");
  const redisPort = await startRedis(t);
  const a = await startNode(t, "a", redisPort, 0);
  const b = await startNode(t, "b", redisPort, a.port);
  // the backend publishes through a node of its own: a request to the shared port may reach a stopped node
  const backend = await startNode(t, "backend", redisPort, 0, false);
  const page = await browser.context.newPage();
  t.after(() => page.close().catch(() => {}));
  await page.goto(demoUrl(a.url(""), {
    token: TOKENS.alice, device: "d1", subscribe: "1", channel: "news", backoffBaseMs: "150", backoffMaxMs: "300",
  }));
  const first = await waitForEvent(page, { type: "ack", request: "subscribe" });
  assert.deepEqual([first.reply.seq, /^[0-9a-f]{16}$/.test(first.reply.epoch)], [0, true]);
  const published = await backend.publish("news", "before");
  assert.deepEqual([published.status, published.body.seq], [202, 1]);
  await waitForEvent(page, { type: "message", data: "before" });

  // the kernel spread the page's connection to one of the two: that one dies without a word
  const [holder, other] = a.logLines("session_open").length ? [a, b] : [b, a];
  assert.equal(holder.logLines("session_open").length, 1, "the page's session is on one node");
  holder.killed = true;
  holder.signal("SIGSTOP"); // hangs first: what is published now never reaches the page through it
  for (let i = 0; i < 5; i++) {
    const { status, body } = await backend.publish("news", `missed ${i}`);
    assert.deepEqual([status, body.seq], [202, i + 2]);
  }
  holder.signal("SIGKILL");
  const lost = await waitForEvent(page, { type: "close" });
  assert.deepEqual([lost.code, lost.willReconnect], [1006, true]);

  const restored = await waitForEvent(page, { type: "restored", channel: "news" }, 10000);
  assert.deepEqual([restored.recovered, restored.lastSeq, restored.ack.seq], [true, 1, 6]);
  assert.equal(other.logLines("session_open").length, 1, "the page came back on the node still alive");
  await waitForEvent(page, { type: "message", data: "missed 4" });
  assert.equal((await backend.publish("news", "live")).body.seq, 7);
  await waitForEvent(page, { type: "message", data: "live" });
  const got = (await events(page, "message")).map((e) => [e.seq, e.data]);
  assert.deepEqual(got, [[1, "before"], [2, "missed 0"], [3, "missed 1"], [4, "missed 2"], [5, "missed 3"],
    [6, "missed 4"], [7, "live"]]);
  assert.equal((await events(page, "gap")).length, 0, "no gap: everything missed was replayed");
  await screenshot(page, "cluster-recovered");
});
