// serve.js — what the Node peer servers of the benchmarks share: the port
// argument, the `ws` server with the fair settings, and the "listening PORT"
// line the scripts wait for (so they can pass port 0 and read the real one).
//
//   node SERVER.js [--deflate=ws|mod_wsock] PORT
//
// Settings are the fair counterpart of mod_wsock's:
//   perMessageDeflate: false  - by default, as mod_wsock's WSockCompression off
//                               (ws would otherwise negotiate it when asked)
//   --deflate=ws              - permessage-deflate as ws ships it
//                               (`perMessageDeflate: true`): zlib's defaults
//                               (level 6, memLevel 8, 15-bit windows), context
//                               kept both ways, threshold 1024 (which ws applies
//                               only to a side without context takeover, so
//                               here every message is compressed), 10 zlib
//                               jobs at a time
//   --deflate=mod_wsock       - the same parameters as mod_wsock's
//                               `WSockCompression on` defaults: level 1,
//                               memLevel 8, threshold 128, no context takeover
//                               either way (what ws needs to apply the threshold)
//   maxPayload: 64 MiB        - the same limit the benchmark gives mod_wsock
// Binds 127.0.0.1 only; a broken client never brings the server down.
'use strict';

const { WebSocketServer } = require('ws');

// serve(name, onConnection): starts the server on the port given as the
// first argument; onConnection(ws, req) as for ws's 'connection' event.
const DEFLATE = {
  ws: true,
  mod_wsock: {
    threshold: 128,
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    zlibDeflateOptions: { level: 1, memLevel: 8 },
  },
};

module.exports = function serve(name, onConnection) {
  const args = process.argv.slice(2);
  const port = Number(args.pop());
  const deflate = args.length === 0 ? false
    : args[0].startsWith('--deflate=') ? DEFLATE[args[0].slice(10)] : undefined;
  if (!Number.isInteger(port) || port < 0 || port > 65535 || args.length > 1
      || deflate === undefined) {
    console.error(`usage: node ${name}.js [--deflate=ws|mod_wsock] PORT`);
    process.exit(2);
  }
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port,
    perMessageDeflate: deflate,
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
