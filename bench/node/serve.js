// serve.js — what the Node peer servers of the benchmarks share: the port
// argument, the `ws` server with the fair settings, and the "listening PORT"
// line the scripts wait for (so they can pass port 0 and read the real one).
//
// Settings are the fair counterpart of mod_wsock's:
//   perMessageDeflate: false  - mod_wsock does not compress, so neither does
//                               this (ws would otherwise negotiate it when asked)
//   maxPayload: 64 MiB        - the same limit the benchmark gives mod_wsock
// Binds 127.0.0.1 only; a broken client never brings the server down.
'use strict';

const { WebSocketServer } = require('ws');

// serve(name, onConnection): starts the server on the port given as the
// first argument; onConnection(ws, req) as for ws's 'connection' event.
module.exports = function serve(name, onConnection) {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`usage: node ${name}.js PORT`);
    process.exit(2);
  }
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port,
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
  });
  wss.on('connection', (ws, req) => {
    ws.on('error', () => {});
    onConnection(ws, req);
  });
  wss.on('listening', () => console.log(`listening ${wss.address().port}`));
  wss.on('error', (err) => {
    console.error(`${name}: ${err.message}`);
    process.exit(1);
  });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => process.exit(0));
  }
  return wss;
};
