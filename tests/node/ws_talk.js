// Talks to a mod_wsock location with Node's ws client and prints one JSON
// line: the messages received (text, or {bin: length}) and the close.
// Usage: node ws_talk.js URL EXPECTED_COUNT MESSAGE...
// Sends the messages one at a time, the first at the open, each next after a
// reply; stops
// after EXPECTED_COUNT messages received, or at the close, or after 15 s.
"use strict";
const WebSocket = require("ws");

const [url, expected, ...messages] = process.argv.slice(2);
const result = { received: [], close: null, errors: [] };
const deadline = setTimeout(() => { result.errors.push("timeout"); finish(); }, 15000);
let done = false;

function finish() {
  if (done) return;
  done = true;
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

const ws = new WebSocket(url, { perMessageDeflate: false });
ws.on("open", () => { if (messages.length) ws.send(messages.shift()); });
ws.on("message", (data, isBinary) => {
  result.received.push(isBinary ? { bin: data.length } : data.toString());
  if (result.received.length >= Number(expected)) {
    ws.close(1000, "done");
  } else if (messages.length) {
    ws.send(messages.shift());
  }
});
ws.on("unexpected-response", (req, res) => {
  result.status = res.statusCode;
  finish();
});
ws.on("close", (code, reason) => { result.close = { code, reason: reason.toString() }; finish(); });
ws.on("error", (e) => { result.errors.push(String(e)); });
