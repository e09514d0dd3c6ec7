// A room member driven by the test over stdin/stdout, with Node's ws client
// (test_compression_rooms.py).
//
//   node ws_member.js ws://127.0.0.1:PORT/path?room=R deflate|plain
//
// deflate: ws's permessage-deflate with its defaults (it offers
// "permessage-deflate; client_max_window_bits" and compresses messages of
// 1 KiB and more); plain: no extension offered.
// stdout, one JSON line each:
//   OPEN {"port": local port, "extensions": the server's answer or null}
//   GOT {"n": index, "bin": true|false, "len": bytes, "sha": sha256 hex}
//   CLOSED {"code": code} / ERROR {"error": text}
// stdin: "SEND text|bin BASE64" sends those bytes as one text or binary
// message; "CLOSE" closes (1000).  Gives up after 90 s.
"use strict";
const crypto = require("crypto");
const readline = require("readline");
const WebSocket = require("ws");

const [url, mode] = process.argv.slice(2);
const out = (tag, obj) => process.stdout.write(tag + " " + JSON.stringify(obj) + "\n");
const deadline = setTimeout(() => { out("ERROR", { error: "timeout" }); process.exit(1); },
                            90000);

let extensions = null;
let received = 0;
const ws = new WebSocket(url, { perMessageDeflate: mode === "deflate" });

ws.on("upgrade", (res) => { extensions = res.headers["sec-websocket-extensions"] || null; });
ws.on("open", () => out("OPEN", { port: ws._socket.localPort, extensions }));
ws.on("message", (data, isBinary) => {
  const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
  out("GOT", { n: received++, bin: isBinary, len: buf.length,
               sha: crypto.createHash("sha256").update(buf).digest("hex") });
});
ws.on("close", (code) => {
  out("CLOSED", { code });
  clearTimeout(deadline);
  process.exit(0);
});
ws.on("error", (e) => out("ERROR", { error: String(e) }));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, kind, b64] = line.split(" ");
  if (cmd === "SEND") {
    ws.send(Buffer.from(b64 || "", "base64"), { binary: kind === "bin" });
  } else if (cmd === "CLOSE") {
    ws.close(1000);
  }
});
