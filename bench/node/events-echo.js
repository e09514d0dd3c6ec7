#!/usr/bin/env node
// A trivial backend of mod_wsock's backend handler (docs/backend.md): Pushpin's
// WebSocket-over-HTTP on Node's own http module, no library, echoing every
// TEXT and BINARY event back.  The peer of bench/backend.sh: the application
// side of a client -> mod_wsock -> backend -> client round trip.
//
//   node events-echo.js [--sleep=MS] PORT     (PORT 0 = any free port)
//
// --sleep=MS answers every request after the OPEN MS milliseconds late (the
// sleeping backend of the bench's "sleepers").  Prints "listening PORT".
'use strict';

const http = require('http');

const args = process.argv.slice(2);
const sleepArg = args.find((a) => a.startsWith('--sleep='));
const sleepMs = sleepArg ? Number(sleepArg.slice(8)) : 0;
const port = Number(args.filter((a) => !a.startsWith('--')).pop() || 0);

function echo(body) {
  const out = [];
  let i = 0;
  while (i < body.length) {
    const eol = body.indexOf('\r\n', i);
    if (eol < 0) throw new Error('bad events');
    const line = body.toString('latin1', i, eol);
    i = eol + 2;
    const sp = line.indexOf(' ');
    if (sp < 0) {
      if (line === 'OPEN') out.push(Buffer.from('OPEN\r\n'));
      continue;
    }
    const name = line.slice(0, sp);
    const n = parseInt(line.slice(sp + 1), 16);
    if (name === 'TEXT' || name === 'BINARY') {
      out.push(Buffer.from(`${name} ${n.toString(16)}\r\n`), body.subarray(i, i + n),
               Buffer.from('\r\n'));
    }
    i += n + 2;
  }
  return Buffer.concat(out);
}

const server = http.createServer((req, res) => {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    let out;
    try {
      out = echo(Buffer.concat(parts));
    } catch (e) {
      res.writeHead(400);
      res.end();
      return;
    }
    const answer = () => {
      res.writeHead(200, { 'Content-Type': 'application/websocket-events',
                           'Content-Length': out.length });
      res.end(out);
    };
    const opening = out.length >= 6 && out.toString('latin1', 0, 6) === 'OPEN\r\n';
    if (sleepMs && !opening) setTimeout(answer, sleepMs); else answer();
  });
});
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
