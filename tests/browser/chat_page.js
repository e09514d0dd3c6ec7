// Drives the demo chat page (conf/demo/htdocs) in Debian's headless Chromium
// through playwright-core.  Run by test_chat_page.py, which owns the server:
//
//   node chat_page.js http://127.0.0.1:PORT ARTIFACT_DIR
//
// stdout: "STEP stop" / "STEP start" ask the test to stop / start apache2
// (it answers "ok" on stdin); the last line is "RESULT {json}".  Every wait
// is bounded; the whole run gives up after 100 s.
"use strict";
const path = require("path");
const readline = require("readline");
const { chromium } = require(path.join(__dirname, "..", "node", "node_modules", "playwright-core"));

const [base, artifacts] = process.argv.slice(2);
const WAIT = { timeout: 15000 };
const result = { ok: false, checks: {}, dialogs: [], pageErrors: [] };
let browser = null;

const finish = require("./page_result")(result, () => browser, 100000);

// Lines from the test on stdin, one promise per STEP.
const answers = [];
const waiting = [];
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (waiting.length) waiting.shift()(line); else answers.push(line);
});
function step(what) {
  process.stdout.write("STEP " + what + "\n");
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no answer to STEP " + what)), 45000);
    const take = (line) => { clearTimeout(t); resolve(line); };
    if (answers.length) take(answers.shift()); else waiting.push(take);
  });
}

const stateOf = (page) => page.evaluate(() => {
  const s = document.getElementById("state");
  return { state: s.dataset.state, text: s.textContent };
});
const waitState = (page, state, prefix, timeout) => page.waitForFunction(
  ([st, pre]) => {
    const s = document.getElementById("state");
    return s.dataset.state === st && s.textContent.startsWith(pre);
  }, [state, prefix], { timeout: timeout || WAIT.timeout });
const waitMembers = (page, text) => page.waitForFunction(
  (t) => document.getElementById("members").textContent === t, text, WAIT);
// The log line whose text node (after the sender) is exactly text: [sender, line text].
const waitLine = async (page, text) => {
  await page.waitForFunction((t) => [...document.querySelectorAll("#log li")]
    .some((li) => li.lastChild && li.lastChild.nodeType === 3 && li.lastChild.data === t),
  text, WAIT);
  return page.evaluate((t) => {
    const li = [...document.querySelectorAll("#log li")]
      .find((l) => l.lastChild && l.lastChild.data === t);
    const from = li.querySelector(".from");
    return [from ? from.textContent : null, li.textContent];
  }, text);
};

async function send(page, text) {
  await page.fill("#msg", text);
  await page.press("#msg", "Enter");
}

(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // root in a container: no sandbox; no GPU, no /dev/shm needed
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    timeout: 30000,
  });
  const room = "browser" + (Date.now() % 100000);
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await (await browser.newContext({ viewport: { width: 900, height: 700 } })).newPage();
    page.on("dialog", (d) => { result.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    page.on("pageerror", (e) => result.pageErrors.push(String(e)));
    await page.goto(base + "/?room=" + room, WAIT);
    await waitState(page, "open", "Connected as ");
    pages.push(page);
  }
  const [a, b] = pages;
  const idA = (await stateOf(a)).text.slice("Connected as ".length);
  const idB = (await stateOf(b)).text.slice("Connected as ".length);
  await waitMembers(a, "2 members");
  await waitMembers(b, "2 members");
  result.checks.ids = [idA, idB];
  result.checks.roomField = await a.inputValue("#room");

  // A message from one page appears in the other, with its sender.
  await send(a, "hello from A");
  result.checks.atB = await waitLine(b, "hello from A");
  result.checks.atA = await waitLine(a, "hello from A");

  // Markup from another user is text: no element, no script, no dialog.
  const evil = "<img src=x onerror=alert(1)>";
  await send(b, evil);
  result.checks.evilAtA = await waitLine(a, evil);
  await a.waitForTimeout(500);                  // time for an onerror to fire
  result.checks.imgElements = await a.evaluate(() => document.querySelectorAll("img").length);
  result.checks.logHTMLHasTag = await a.evaluate(
    () => document.getElementById("log").innerHTML.includes("<img"));

  await a.screenshot({ path: path.join(artifacts, "chat.png"), fullPage: true });

  // The server goes away: the page says so and counts down to a retry.
  await step("stop");
  await waitState(a, "closed", "Disconnected (");
  result.checks.whileDown = (await stateOf(a)).text;
  await a.screenshot({ path: path.join(artifacts, "chat-reconnecting.png"), fullPage: true });

  // It comes back: both pages reconnect by themselves.
  await step("start");
  await waitState(a, "open", "Connected as ", 45000);
  await waitState(b, "open", "Connected as ", 45000);
  await waitMembers(a, "2 members");
  result.checks.afterRestart = (await stateOf(a)).text;
  await send(b, "back again");
  result.checks.afterRestartAtA = await waitLine(a, "back again");

  result.ok = true;
  finish();
})().catch(finish);
