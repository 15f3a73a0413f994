// node_broadcast.js: a Node.js `ws` broadcast server, the reference point for wsgate's
// fan-out. A client that sends {"type":"subscribe",...} gets {"type":"ack"} and becomes a
// subscriber; any other text message is sent unchanged to every subscriber (one
// ws.send each, the usual `ws` broadcast loop) and answered with
// {"type":"ack","delivered":N}, as wsgate answers a publish. Loopback only, no auth.
// Usage: node test/bench/node_broadcast.js PORT   (needs `npm install --no-save ws`)
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8093);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: node test/bench/node_broadcast.js PORT');
  process.exit(2);
}

// No compression, as in node_echo.js: the numbers compare framing and I/O, not zlib.
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
const subscribers = new Set();

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length < 256 && data.toString().startsWith('{"type":"subscribe"')) {
      subscribers.add(ws);
      ws.send('{"type":"ack"}');
      return;
    }
    let delivered = 0;
    for (const sub of subscribers) {
      if (sub.readyState === 1) {
        sub.send(data, { binary: isBinary });
        delivered++;
      }
    }
    ws.send(`{"type":"ack","delivered":${delivered}}`);
  });
  ws.on('close', () => subscribers.delete(ws));
});
wss.on('listening', () => console.error(`node-broadcast: listening on 127.0.0.1:${port}`));

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close(() => process.exit(0));
  });
}
