#!/usr/bin/env node
// Broadcast server on Node's `ws`: the peer of mod_wsock's chat handler with
// `echo=off presence=off` in the fan-out benchmark (fanout.sh).
//
//   node broadcast-server.js PORT      (PORT 0 = any free port)
//
// Every client is in the room named by its URL path; a message goes, as it
// came (binary as binary, text as text, the same bytes), to every other open
// client of that room, in the order received: what mod_wsock's chat relays
// with presence=off and echo=off, so the clients do identical work.  This is
// the broadcast loop of ws's own README (one send per client).  Prints
// "listening PORT" once it accepts.  Settings: see serve.js.
'use strict';

const { WebSocket } = require('ws');
const serve = require('./serve');

const rooms = new Map(); // path -> Set of clients

serve('broadcast-server', (ws, req) => {
  const name = new URL(req.url, 'ws://127.0.0.1').pathname;
  let room = rooms.get(name);
  if (!room) {
    room = new Set();
    rooms.set(name, room);
  }
  room.add(ws);
  ws.on('message', (data, isBinary) => {
    for (const peer of room) {
      if (peer !== ws && peer.readyState === WebSocket.OPEN) {
        peer.send(data, { binary: isBinary });
      }
    }
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0 && rooms.get(name) === room) {
      rooms.delete(name);
    }
  });
});
