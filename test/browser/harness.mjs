// Harness for the browser tests: the real build/wsgate with a temporary config
// on free ports, nginx with the shipped conf/nginx/wsgate.conf, and Debian's
// Chromium driven by playwright-core. Everything a test starts is stopped by
// its cleanup; nothing is downloaded.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

export const HOST = "127.0.0.1";
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const WWW = path.join(ROOT, "www");
export const TOKENS = { alice: "alice-secret", bob: "bob-secret" };
export const API_KEY = "browser-test-api-key-0123";
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export function binary() {
  const i = process.argv.indexOf("--binary");
  const bin = process.env.WSGATE_BINARY || (i > 0 ? process.argv[i + 1] : path.join(ROOT, "build", "wsgate"));
  return path.resolve(bin);
}

// Screenshots go beside the binary under test (build/browser-screenshots), never into the tree.
export function screenshotDir() {
  const dir = process.env.WSGATE_SCREENSHOT_DIR || path.join(path.dirname(binary()), "browser-screenshots");
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port }, () => {
      sock.destroy();
      resolve(true);
    });
    sock.on("error", () => resolve(false));
    sock.setTimeout(200, () => {
      sock.destroy();
      resolve(false);
    });
  });
}

async function waitListening(port, proc, timeoutMs, what, log) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode} at start-up:\n${log()}`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms:\n${log()}`);
    await sleep(20);
  }
}

// ---- libconfig rendering (as test/integration/wsgate_harness.py) ----
function render(v, indent = 0) {
  const pad = "  ".repeat(indent);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x !== "object")) return "[ " + v.map((x) => render(x)).join(", ") + " ]";
    return "(\n" + v.map((x) => pad + "  " + render(x, indent + 1)).join(",\n") + "\n" + pad + ")";
  }
  return "{\n" + Object.entries(v).map(([k, x]) => `${pad}  ${k} = ${render(x, indent + 1)};\n`).join("") + pad + "}";
}

function merge(base, over) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over || {}))
    out[k] = v && typeof v === "object" && !Array.isArray(v) && typeof base[k] === "object" ? merge(base[k], v) : v;
  return out;
}

const PERMS = { subscribe: ["news", "chat.*"], publish: ["chat.*"], send: ["**"] };

export class Wsgate {
  constructor(workdir, overrides = {}) {
    this.workdir = workdir;
    this.overrides = overrides;
    this.proc = null;
    this.exits = [];
  }

  async init() {
    this.port = await freePort();
    this.config = merge(
      {
        listen: { address: HOST, port: this.port },
        http: { root: WWW },
        auth: { reject: "http" },
        sessions: { on_repeat: "reject-new", max: 100 },
        heartbeat: { interval_ms: 25000, timeout_ms: 10000 },
        shutdown: { grace_ms: 2000 },
        api: { keys: [API_KEY] },
        tokens: Object.entries(TOKENS).map(([user, token]) => ({ token, user, ...PERMS })),
      },
      this.overrides
    );
    this.confPath = path.join(this.workdir, `wsgate-${this.port}.conf`);
    this.logPath = path.join(this.workdir, `wsgate-${this.port}.log`);
    // it holds tokens: wsgate refuses a config open to others
    fs.writeFileSync(this.confPath, Object.entries(this.config).map(([k, v]) => `${k} = ${render(v)};\n`).join(""), { mode: 0o600 });
    fs.chmodSync(this.confPath, 0o600);
    return this;
  }

  async start() {
    const out = fs.openSync(this.logPath, "a");
    this.proc = spawn(binary(), ["-c", this.confPath], { stdio: ["ignore", out, out] });
    fs.closeSync(out);
    const proc = this.proc;
    proc.exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
    await waitListening(this.port, proc, 5000, "wsgate", () => this.log());
    return this;
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, "utf8");
    } catch (e) {
      return "";
    }
  }

  logLines(event) {
    return this.log().split("\n").filter((l) => l.includes(` event=${event} `) || l.endsWith(` event=${event}`));
  }

  async waitForLog(re, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.log().split("\n").find((l) => re.test(l));
      if (line) return line;
      if (Date.now() > deadline) throw new Error(`no log line matching ${re} within ${timeoutMs} ms:\n${this.log()}`);
      await sleep(20);
    }
  }

  signal(sig) {
    this.proc.kill(sig);
  }

  // SIGTERM and wait; returns the exit code (null when it had to be killed).
  async stop(sig = "SIGTERM", timeoutMs = 10000) {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc ? proc.exitCode : null;
    proc.kill("SIGCONT");
    proc.kill(sig);
    const timer = sleep(timeoutMs).then(() => "timeout");
    const result = await Promise.race([proc.exited, timer]);
    if (result === "timeout") {
      proc.kill("SIGKILL");
      await proc.exited;
      return null;
    }
    return result.code;
  }

  url(pathAndQuery = "/") {
    return `http://${HOST}:${this.port}${pathAndQuery}`;
  }

  async publish(channel, data) {
    const res = await fetch(this.url("/api/publish"), {
      method: "POST",
      headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ channel, data }),
    });
    return { status: res.status, body: await res.json() };
  }
}

// ---- nginx with the shipped server block (as test/integration/test_nginx.py) ----
function substituteOnce(text, re, replacement, what) {
  let count = 0;
  const out = text.replace(re, (...m) => {
    count++;
    return typeof replacement === "function" ? replacement(...m) : replacement;
  });
  if (count !== 1) throw new Error(`conf/nginx/wsgate.conf: expected exactly one ${what}, found ${count}`);
  return out;
}

export function genCerts(dir) {
  const r = spawnSync(path.join(ROOT, "scripts", "gen-certs.sh"), [dir], { encoding: "utf8", timeout: 30000 });
  if (r.status !== 0) throw new Error(`gen-certs.sh failed: ${r.stdout}${r.stderr}`);
  return dir;
}

export class Nginx {
  constructor(workdir, certdir, upstreamPort) {
    this.prefix = path.join(workdir, "nginx");
    fs.mkdirSync(path.join(this.prefix, "logs"), { recursive: true });
    this.certdir = certdir;
    this.upstreamPort = upstreamPort;
  }

  async start() {
    this.port = await freePort();
    let site = fs.readFileSync(path.join(ROOT, "conf", "nginx", "wsgate.conf"), "utf8");
    site = substituteOnce(site, /^(\s*)listen 443 ssl;$/m, (_, ws) => `${ws}listen ${HOST}:${this.port} ssl;`, "listen 443");
    site = substituteOnce(site, /^\s*listen \[::\]:443 ssl;\n/m, "", "listen [::]:443");
    site = substituteOnce(site, /^(\s*ssl_certificate\s+)\S+;$/m, (_, h) => `${h}${path.join(this.certdir, "server.crt")};`, "ssl_certificate");
    site = substituteOnce(site, /^(\s*ssl_certificate_key\s+)\S+;$/m, (_, h) => `${h}${path.join(this.certdir, "server.key")};`, "ssl_certificate_key");
    site = substituteOnce(site, /^(\s*server\s+)127\.0\.0\.1:8080;$/m, (_, h) => `${h}${HOST}:${this.upstreamPort};`, "upstream server");
    site = substituteOnce(site, /^(\s*access_log\s+)\/var\/log\/nginx\/wsgate\.access\.log(\s)/m,
      (_, h, s) => `${h}${path.join(this.prefix, "logs", "wsgate.access.log")}${s}`, "access_log");
    const sitePath = path.join(this.prefix, "wsgate.conf");
    fs.writeFileSync(sitePath, site);
    const t = (n) => path.join(this.prefix, n);
    const confPath = t("nginx.conf");
    fs.writeFileSync(confPath, [
      process.getuid && process.getuid() === 0 ? "user root;" : "",
      "worker_processes 1;", "daemon off;", `pid ${t("nginx.pid")};`, "error_log stderr notice;",
      "events { worker_connections 256; }", "http {", `    access_log ${t("logs/access.log")};`,
      `    client_body_temp_path ${t("client_body")};`, `    proxy_temp_path ${t("proxy")};`,
      `    fastcgi_temp_path ${t("fastcgi")};`, `    uwsgi_temp_path ${t("uwsgi")};`, `    scgi_temp_path ${t("scgi")};`,
      `    include ${sitePath};`, "}", ""].join("\n"));
    this.stderrPath = t("logs/stderr.log");
    const out = fs.openSync(this.stderrPath, "a");
    const nginx = fs.existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";
    this.proc = spawn(nginx, ["-p", this.prefix + "/", "-e", "stderr", "-c", confPath], { stdio: ["ignore", out, out], detached: true });
    fs.closeSync(out);
    const proc = this.proc;
    proc.exited = new Promise((resolve) => proc.on("exit", resolve));
    await waitListening(this.port, proc, 5000, "nginx", () => fs.readFileSync(this.stderrPath, "utf8"));
    return this;
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const r = await Promise.race([proc.exited, sleep(5000).then(() => "timeout")]);
    if (r === "timeout") {
      try {
        process.kill(-proc.pid, "SIGKILL"); // the process group this test started
      } catch (e) {
        /* gone */
      }
      await proc.exited;
    }
  }
}

// ---- a TCP relay that can lose its clients without telling wsgate ----
// dropClients() ends every client's connection (the page sees 1006, no close frame)
// and keeps the wsgate side open and silent, as a dead network path would: wsgate
// still holds those sessions until its heartbeat timeout.
export class Relay {
  constructor(upstreamPort) {
    this.upstreamPort = upstreamPort;
    this.pairs = new Set();
  }

  async start() {
    this.port = await freePort();
    this.server = net.createServer((client) => {
      const upstream = net.connect({ host: HOST, port: this.upstreamPort });
      const pair = { client, upstream };
      this.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on("error", end);
      upstream.on("error", end);
      upstream.on("close", end);
      client.on("close", () => !pair.dropped && end());
    });
    await new Promise((resolve) => this.server.listen(this.port, HOST, resolve));
    return this;
  }

  dropClients() {
    for (const pair of this.pairs) {
      pair.dropped = true;
      pair.client.unpipe(pair.upstream);
      pair.upstream.unpipe(pair.client);
      pair.upstream.resume(); // read and discard what wsgate sends (its pings): nothing answers
      pair.client.destroy();
    }
  }

  async stop() {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }
}

// ---- Chromium ----
export async function launchBrowser() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "wsgate-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true, // nginx's development certificate
    viewport: { width: 1000, height: 800 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

// The demo page with its query: the client connects at once.
export function demoUrl(base, query) {
  const q = new URLSearchParams({ connect: "1", ...query });
  return `${base}/?${q}`;
}

// Waits until window.demo.events holds an event matching all of want's fields; returns it.
export async function waitForEvent(page, want, timeoutMs = 10000, after = 0) {
  const handle = await page.waitForFunction(
    ([w, after]) => {
      const events = (window.demo && window.demo.events) || [];
      return events.slice(after).find((e) => Object.entries(w).every(([k, v]) => e[k] === v)) || false;
    },
    [want, after],
    { timeout: timeoutMs, polling: 25 }
  );
  return handle.jsonValue();
}

export function events(page, type) {
  return page.evaluate((type) => window.demo.events.filter((e) => !type || e.type === type), type);
}

export async function screenshot(page, name) {
  const file = path.join(screenshotDir(), name + ".png");
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
