#!/usr/bin/env node
// Echo server on Node's `ws`, the peer mod_wsock is compared with.
//
//   node echo-server.js PORT      (PORT 0 = any free port)
//
// Binds 127.0.0.1 only.  Prints "listening PORT" once it accepts, so the
// caller can use port 0 and read the real port (no race for a free port).
// Settings are the fair counterpart of mod_wsock's echo handler:
//   perMessageDeflate: false  - mod_wsock does not compress, so neither does
//                               this (ws would otherwise negotiate it when asked)
//   maxPayload: 64 MiB        - the same limit the benchmark gives mod_wsock
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node echo-server.js PORT');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
});

wss.on('connection', (ws) => {
  // Text stays text, binary stays binary.
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // a broken client must not bring the server down
});
wss.on('listening', () => console.log(`listening ${wss.address().port}`));
wss.on('error', (err) => {
  console.error(`echo-server: ${err.message}`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
