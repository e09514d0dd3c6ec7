#!/usr/bin/env node
// Echo server on Node's `ws`, the peer mod_wsock is compared with.
//
//   node echo-server.js PORT      (PORT 0 = any free port)
//
// Prints "listening PORT" once it accepts.  Settings: see serve.js.
'use strict';

const serve = require('./serve');

serve('echo-server', (ws) => {
  // Text stays text, binary stays binary.
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
