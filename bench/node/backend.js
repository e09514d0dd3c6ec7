#!/usr/bin/env node
// A trivial application backend for mod_wsock's backend handler
// (`WSockHandler backend URL`, docs/backend.md): it echoes every client
// message, so that backend.sh can compare the client -> Apache -> backend
// -> client round trip with Apache + mod_proxy_wstunnel -> node/echo-server.js.
//
//   node backend.js PORT      (PORT 0 = any free port)
//
// Paths (the URL given to WSockHandler backend):
//   /events   protocol=websocket-events (Pushpin's WebSocket-over-HTTP): the
//             body is events `NAME <hex length>\r\n<bytes>\r\n` (or `NAME\r\n`
//             without content), several per request when they queued up;
//             the answer (Content-Type application/websocket-events) has
//             OPEN for OPEN, the same TEXT/BINARY event for each TEXT/BINARY
//             (the echo), PONG for PING, CLOSE for CLOSE (the close
//             handshake), nothing for PONG and DISCONNECT
//   /plain    protocol=plain: `Wsock-Event: message` -> 200 with the body
//             and its Content-Type (the echo); open, close -> 204
//   .../sleep/MS  the same, answered MS milliseconds late (every request,
//             OPEN included): a backend that is slow (backend-sleep.sh)
//   GET /stats  JSON: requests, events and messages so far, bad requests,
//             requests being slept on now (sleeping; sleeping_messages: those
//             with a TEXT or BINARY event) and the most at once
// A request it cannot parse gets 400 and is counted (bad); nothing is
// kept per connection.  Node's http server with keep-alive (the module
// keeps its connections to the backend).  Binds 127.0.0.1 only; prints
// "listening PORT" once it accepts.
'use strict';

const http = require('http');

const EVENTS = 'application/websocket-events';
const stats = {
  requests: 0, events: 0, messages: 0, bad: 0,
  sleeping: 0, sleeping_max: 0, sleeping_messages: 0,
};
const CRLF = Buffer.from('\r\n');

// The events of a websocket-events body: [{name, start, end}] where
// body.subarray(start, end) is the whole event on the wire; null if the
// body is malformed.
function parseEvents(body) {
  const events = [];
  let pos = 0;
  while (pos < body.length) {
    const eol = body.indexOf(CRLF, pos);
    if (eol < 0) return null;
    const line = body.toString('latin1', pos, eol);
    const sp = line.indexOf(' ');
    const name = sp < 0 ? line : line.slice(0, sp);
    let end = eol + 2;
    if (sp >= 0) {
      const hex = line.slice(sp + 1);
      if (!/^[0-9A-Fa-f]{1,8}$/.test(hex)) return null;
      end += parseInt(hex, 16) + 2;
      if (end > body.length || body[end - 2] !== 13 || body[end - 1] !== 10) return null;
    }
    if (!/^[A-Z]+$/.test(name)) return null;
    events.push({ name, start: pos, end });
    pos = end;
  }
  return events;
}

// The answer to a websocket-events request: a Buffer, or null (400).
function answerEvents(body) {
  const events = parseEvents(body);
  if (!events) return null;
  const out = [];
  stats.events += events.length;
  for (const ev of events) {
    switch (ev.name) {
      case 'OPEN':
        out.push(Buffer.from('OPEN\r\n'));
        break;
      case 'TEXT':
      case 'BINARY':
        stats.messages++;
        out.push(body.subarray(ev.start, ev.end)); // the same event: the echo
        break;
      case 'PING':
        out.push(Buffer.concat([Buffer.from('PONG'), body.subarray(ev.start + 4, ev.end)]));
        break;
      case 'CLOSE':
        out.push(body.subarray(ev.start, ev.end)); // the close handshake
        break;
      default: // PONG, DISCONNECT, anything newer: nothing to say
        break;
    }
  }
  return out.length === 1 ? out[0] : Buffer.concat(out);
}

function handle(req, res, body) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const m = /^\/(events|plain)(?:\/sleep\/(\d+))?$/.exec(url.pathname);
  if (req.method === 'GET' && url.pathname === '/stats') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(stats) + '\n');
    return;
  }
  if (req.method !== 'POST' || !m) {
    res.writeHead(404);
    res.end();
    return;
  }
  stats.requests++;
  const before = stats.messages;
  let status = 200;
  let headers = {};
  let answer = null;
  if (m[1] === 'events') {
    answer = answerEvents(body);
    headers = { 'Content-Type': EVENTS };
  } else {
    stats.events++;
    const event = req.headers['wsock-event'];
    if (event === 'message') {
      stats.messages++;
      answer = body;
      headers = { 'Content-Type': req.headers['content-type'] || 'application/octet-stream' };
    } else if (event === 'open' || event === 'close') {
      status = 204;
      answer = Buffer.alloc(0);
    }
  }
  if (answer === null) {
    stats.bad++;
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end('malformed request\n');
    return;
  }
  headers['Content-Length'] = answer.length;
  const send = () => {
    res.writeHead(status, headers);
    res.end(answer);
  };
  if (m[2] === undefined) {
    send();
    return;
  }
  const withMessages = stats.messages > before ? 1 : 0;
  stats.sleeping++;
  stats.sleeping_messages += withMessages;
  stats.sleeping_max = Math.max(stats.sleeping_max, stats.sleeping);
  setTimeout(() => {
    stats.sleeping--;
    stats.sleeping_messages -= withMessages;
    send();
  }, Number(m[2]));
}

const port = Number(process.argv[2]);
if (process.argv.length !== 3 || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node backend.js PORT');
  process.exit(2);
}
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => handle(req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
  req.on('error', () => {});
});
// The module keeps its connections: do not drop them between bursts.
server.keepAliveTimeout = 120000;
server.headersTimeout = 121000;
server.requestTimeout = 0;
server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
server.on('error', (err) => {
  console.error(`backend: ${err.message}`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
