// Loads www/wsgate.js as the ES module it is. It is served to browsers as
// text/javascript; for Node, a .js file outside a "type": "module" package is
// CommonJS (or needs module detection), so the source is imported as a data:
// URL, which is always a module. wsgate.js imports nothing, so nothing else resolves.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const CLIENT_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "www", "wsgate.js");

export function loadClient() {
  const source = fs.readFileSync(CLIENT_PATH, "utf8");
  return import("data:text/javascript;charset=utf-8," + encodeURIComponent(source));
}
