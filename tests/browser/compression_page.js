// The demo chat page with permessage-deflate, in Debian's headless Chromium
// through playwright-core.  Run by test_compression_page.py, which owns the
// server:
//
//   node compression_page.js http://127.0.0.1:PORT
//
// Two pages in one room.  Records, for page A, the handshake Chromium sent
// and got (DevTools protocol: the Sec-WebSocket-Extensions offer and answer)
// and ws.extensions of every page's WebSocket; then a large message typed
// in A must show in B (and in A) exactly.  The last stdout line is
// "RESULT {json}"; every wait is bounded, the run gives up after 60 s.
"use strict";
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "node", "node_modules", "playwright-core"));

const base = process.argv[2];
const WAIT = { timeout: 15000 };
const result = { ok: false, checks: {}, pageErrors: [] };
let browser = null;

const finish = require("./page_result")(result, () => browser, 60000);

// Every WebSocket the page makes, kept where the test can read it.
const RECORD_SOCKETS = () => {
  const Orig = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = function (...args) {
    const ws = new Orig(...args);
    window.__sockets.push(ws);
    return ws;
  };
  window.WebSocket.prototype = Orig.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
};

const waitOpen = (page) => page.waitForFunction(() => {
  const s = document.getElementById("state");
  return s.dataset.state === "open" && s.textContent.startsWith("Connected as ");
}, null, WAIT);

// The text of the log line whose text node (after the sender) is exactly t.
const waitLine = (page, t) => page.waitForFunction((text) => [...document.querySelectorAll("#log li")]
  .some((li) => li.lastChild && li.lastChild.nodeType === 3 && li.lastChild.data === text),
t, WAIT).then(() => true);

(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    timeout: 30000,
  });
  const room = "deflate" + (Date.now() % 100000);
  const pages = [];
  const handshake = { offer: null, answer: null };
  for (let i = 0; i < 2; i++) {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (e) => result.pageErrors.push(String(e)));
    await page.addInitScript(RECORD_SOCKETS);
    if (i === 0) {
      const cdp = await page.context().newCDPSession(page);
      await cdp.send("Network.enable");
      const header = (h, name) => {
        const k = Object.keys(h || {}).find((x) => x.toLowerCase() === name);
        return k === undefined ? null : h[k];
      };
      cdp.on("Network.webSocketWillSendHandshakeRequest", (e) => {
        handshake.offer = header(e.request.headers, "sec-websocket-extensions");
      });
      cdp.on("Network.webSocketHandshakeResponseReceived", (e) => {
        handshake.status = e.response.status;
        handshake.answer = header(e.response.headers, "sec-websocket-extensions");
      });
    }
    await page.goto(base + "/?room=" + room, WAIT);
    await waitOpen(page);
    pages.push(page);
  }
  const [a, b] = pages;
  result.checks.handshake = handshake;
  result.checks.extensions = [];
  for (const p of pages) {
    result.checks.extensions.push(await p.evaluate(() => window.__sockets.map((s) => s.extensions)));
  }

  // A large message (the input takes 4000 UTF-16 units): 1- to 4-byte
  // UTF-8, well above the compression threshold, not one repeated unit.
  const words = ["héllo", "wörld", "€uro", "😀", "∑um", "plain", "ascii", "text"];
  let big = "";
  for (let i = 0; big.length < 3900; i++) big += words[(i * 7 + (i >> 3)) % words.length] + i + " ";
  big = big.slice(0, 3900).trimEnd();
  if (/[\uD800-\uDBFF]$/.test(big)) big = big.slice(0, -1);  // no half of a pair
  result.checks.bigBytes = Buffer.byteLength(big, "utf8");
  await a.fill("#msg", big);
  await a.press("#msg", "Enter");
  result.checks.atB = await waitLine(b, big);
  result.checks.atA = await waitLine(a, big);

  result.ok = true;
  finish();
})().catch(finish);
