// The handshake's security checks seen from Debian's headless Chromium
// (playwright-core), for test_security_page.py, which owns the server:
//
//   node security_page.js http://127.0.0.1:PORT TOKEN
//
// From a page of that origin it opens WebSockets: to the same origin, to the
// same server under another name (localhost: the page's origin is still the
// server's own), and to a WSockTokenAuth location with the token as
// subprotocols ["access_token", TOKEN] and without it.  Then from a page of
// http://localhost:PORT to the same name, and from a page of
// http://evil.example:PORT, a name that Chromium resolves to 127.0.0.1
// (--host-resolver-rules): DNS rebinding, the attacker's page reaching a
// server on the victim's loopback under the attacker's name.  The last line
// is "RESULT {json}"; every wait is bounded.
"use strict";
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "node", "node_modules", "playwright-core"));

const [base, token] = process.argv.slice(2);
const port = new URL(base).port;
let browser = null;

function finish(result) {
  process.stdout.write("RESULT " + JSON.stringify(result) + "\n");
  const done = () => process.exit(0);
  if (browser) browser.close().then(done, done); else done();
  setTimeout(done, 5000);
}
setTimeout(() => finish({ error: "gave up after 60 s" }), 60000);

// In the page: open url with protocols, send "ping", report what happened.
function tryWebSocket([url, protocols]) {
  return new Promise((resolve) => {
    const out = { opened: false, protocol: null, echo: null, closeCode: null };
    const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
    const t = setTimeout(() => { out.timeout = true; resolve(out); }, 10000);
    ws.onopen = () => { out.opened = true; out.protocol = ws.protocol; ws.send("ping"); };
    ws.onmessage = (e) => { out.echo = e.data; ws.close(1000); };
    ws.onclose = (e) => { out.closeCode = e.code; clearTimeout(t); resolve(out); };
  });
}

(async () => {
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium",
                                    args: ["--no-sandbox",
                                           "--host-resolver-rules=MAP evil.example 127.0.0.1"] });
  const page = await browser.newPage();
  await page.goto(base + "/sec.html", { timeout: 15000 });
  const run = (url, protocols) => page.evaluate(tryWebSocket, [url, protocols || null]);
  const result = {
    same: await run(`ws://127.0.0.1:${port}/ws`),
    otherName: await run(`ws://localhost:${port}/ws`),
    token: await run(`ws://127.0.0.1:${port}/ws-token`, ["access_token", token]),
    tokenAndProtocol: await run(`ws://127.0.0.1:${port}/ws-token-proto`,
                                ["chat.v1", "access_token", token]),
    noToken: await run(`ws://127.0.0.1:${port}/ws-token`),
  };
  await page.goto(`http://localhost:${port}/sec.html`, { timeout: 15000 });
  result.localhostPage = await run(`ws://localhost:${port}/ws`);
  await page.goto(`http://evil.example:${port}/sec.html`, { timeout: 15000 });
  result.rebound = await run(`ws://evil.example:${port}/ws`);
  finish(result);
})().catch((e) => finish({ error: String(e && e.stack || e) }));
