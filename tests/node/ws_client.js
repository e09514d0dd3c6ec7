// Drives a mod_wsock echo endpoint with Node's ws client and prints one JSON
// line of what happened; the pytest side (test_node_client.py) judges it.
// Usage: node ws_client.js ws://127.0.0.1:PORT/echo
"use strict";
const WebSocket = require("ws");

const url = process.argv[2];
const result = { echoes: [], pong: null, close: null, errors: [] };
const deadline = setTimeout(() => { result.errors.push("timeout"); finish(); }, 15000);

function finish() {
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

const ws = new WebSocket(url, ["v2.json", "chat"], { perMessageDeflate: false });
const big = Buffer.alloc(200000, 7);
const sends = [
  () => ws.send("héllo from node"),
  () => ws.send(Buffer.from([0, 1, 2, 255])),
  () => ws.send(big),
  // A fragmented text message: two frames, the second with fin.
  () => { ws.send("frag-", { fin: false }); ws.send("mented", { fin: true }); },
];
let next = 0;

ws.on("open", () => { result.protocol = ws.protocol; sends[next++](); });
ws.on("message", (data, isBinary) => {
  result.echoes.push(isBinary ? { bin: data.length, sum: data.reduce((a, b) => a + b, 0) }
                              : { text: data.toString() });
  if (next < sends.length) {
    sends[next++]();
  } else {
    ws.ping(Buffer.from("node-ping"));
  }
});
ws.on("pong", (data) => { result.pong = data.toString(); ws.close(4321, "node done"); });
ws.on("close", (code, reason) => { result.close = { code, reason: reason.toString() }; finish(); });
ws.on("error", (e) => { result.errors.push(String(e)); });
