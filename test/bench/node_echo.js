// node_echo.js: a Node.js `ws` echo server, a reference point for wsgate's numbers.
// Every message goes back unchanged; `ws` answers pings itself. Loopback only.
// Usage: node test/bench/node_echo.js PORT   (needs `npm install --no-save ws`)
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8092);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: node test/bench/node_echo.js PORT');
  process.exit(2);
}

// No compression: the generator never offers permessage-deflate, and the numbers
// should compare framing and I/O, not zlib.
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => console.error(`node-echo: listening on 127.0.0.1:${port}`));

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => wss.close(() => process.exit(0)));
}
