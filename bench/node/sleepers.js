#!/usr/bin/env node
// Clients of a backend that sleeps: N connections to URL, each sending a
// 16-byte message every INTERVAL ms for as long as it runs (their events
// queue while the backend sleeps, in batches; see docs/backend.md).  For
// bench/backend.sh's "sleepers" variant.  Prints what happened at SIGTERM.
//
//   node sleepers.js URL N INTERVAL_MS
'use strict';

const WebSocket = require('ws');

const [url, n, interval] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
let open = 0, sent = 0, closed = 0;
const socks = [];
for (let i = 0; i < n; i++) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('open', () => { open++; });
  ws.on('close', () => { closed++; });
  ws.on('error', () => {});
  socks.push(ws);
}
setInterval(() => {
  for (const ws of socks) {
    if (ws.readyState === WebSocket.OPEN) { ws.send('sleepy 0123456789'.slice(0, 16)); sent++; }
  }
}, interval);
console.log('started');
process.on('SIGTERM', () => {
  console.log(`sleepers: ${open} opened, ${sent} messages sent, ${closed} closed`);
  process.exit(0);
});
