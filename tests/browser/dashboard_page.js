// Opens the live dashboard (SetHandler wsock-status) in Debian's headless
// Chromium through playwright-core and reads back what it rendered.  Run by
// test_dashboard_page.py, which owns the server and the WebSockets counted:
//
//   node dashboard_page.js http://127.0.0.1:PORT/status ARTIFACT_DIR WANT_JSON
//
// WANT_JSON: {"open": N, "rooms": {name: members}} the page must come to
// show.  stdout: "DOM {json}" once it does (the test then reads the
// server's own snapshot and answers "ok" on stdin), and "RESULT {json}"
// last.  Every wait is bounded; the whole run gives up after 60 s.
"use strict";
const path = require("path");
const readline = require("readline");
const { chromium } = require(path.join(__dirname, "..", "node", "node_modules", "playwright-core"));

const [url, artifacts, wantJson] = process.argv.slice(2);
const want = JSON.parse(wantJson);
const origin = new URL(url).origin;
const WAIT = { timeout: 20000 };
const result = { ok: false, dialogs: [], pageErrors: [], consoleErrors: [], foreign: [] };
let browser = null;

const finish = require("./page_result")(result, () => browser, 60000);

const lines = readline.createInterface({ input: process.stdin });
const answer = () => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error("no answer from the test")), 20000);
  lines.once("line", (line) => { clearTimeout(t); resolve(line); });
});

// What the page rendered: every number from its data-value attributes, the
// tables' rows, the charts' data and how many pixels their first series drew.
const readPage = (page) => page.evaluate(() => {
  const val = (id) => document.getElementById(id).dataset.value;
  const rows = (id, f) => [...document.querySelectorAll("#" + id + " tbody tr")]
    .filter((tr) => !tr.querySelector("td.empty")).map(f);
  const nums = (tr) => [...tr.cells].filter((td) => td.dataset.value !== undefined)
    .map((td) => Number(td.dataset.value));
  const k0 = getComputedStyle(document.documentElement).getPropertyValue("--k0").trim();
  const rgb = [1, 3, 5].map((i) => parseInt(k0.slice(i, i + 2), 16));
  const charts = {};
  for (const c of document.querySelectorAll("canvas")) {
    const img = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let drawn = 0;
    for (let i = 0; i < img.length; i += 4) {
      if (img[i + 3] > 200 && Math.abs(img[i] - rgb[0]) < 24 && Math.abs(img[i + 1] - rgb[1]) < 24
          && Math.abs(img[i + 2] - rgb[2]) < 24) drawn++;
    }
    charts[c.id] = { points: Number(c.dataset.points), last: c.dataset.last,
                     lasts: c.dataset.lasts, drawn };
  }
  return {
    state: document.getElementById("state").dataset.state,
    tiles: Object.fromEntries(["v-open", "v-children", "v-rooms", "v-members",
      "v-refused-window", "v-closed-window", "v-in-rate", "v-out-rate"].map((id) => [id, val(id)])),
    rooms: rows("t-rooms", (tr) => ({ name: tr.cells[0].textContent, members: nums(tr)[0],
                                      nameElements: tr.cells[0].children.length })),
    locations: rows("t-locations", (tr) => ({ location: tr.cells[0].textContent,
                                              handler: tr.cells[1].textContent,
                                              open: nums(tr)[0], opened: nums(tr)[1] })),
    closes: rows("t-closes", (tr) => ({ code: tr.dataset.code, recent: nums(tr)[0],
                                        total: nums(tr)[1] })),
    refusals: rows("t-refusals", (tr) => ({ reason: tr.dataset.reason, recent: nums(tr)[0],
                                            total: nums(tr)[1],
                                            statuses: tr.cells[3].textContent })),
    roomLegend: [...document.querySelectorAll("#rooms-legend .key")]
      .map((k) => ({ name: k.textContent, elements: k.children.length })),
    historyRows: Number(document.body.dataset.historyRows),
    snapshotTime: Number(document.body.dataset.snapshotTime),
    charts,
    imgElements: document.querySelectorAll("img").length,
    scripts: [...document.scripts].map((s) => s.src),
  };
});

(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    timeout: 30000,
  });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  page.on("dialog", (d) => { result.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on("pageerror", (e) => result.pageErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") result.consoleErrors.push(m.text()); });
  page.on("request", (r) => { if (!r.url().startsWith(origin + "/")) result.foreign.push(r.url()); });
  await page.goto(url, WAIT);

  // The page shows the server's counts once its stream delivered them.
  await page.waitForFunction((w) => {
    const open = document.getElementById("v-open").dataset.value;
    const rooms = Object.fromEntries([...document.querySelectorAll("#t-rooms tr.room")]
      .map((tr) => [tr.cells[0].textContent, Number(tr.cells[1].dataset.value)]));
    return document.getElementById("state").dataset.state === "live"
      && Number(open) === w.open
      && Object.keys(w.rooms).every((name) => rooms[name] === w.rooms[name]);
  }, want, WAIT);
  // ... and one snapshot later still (the tiles come from the newest one;
  // an onerror in a room name would have fired by then)
  const seen = await page.evaluate(() => Number(document.body.dataset.snapshots));
  await page.waitForFunction((n) => Number(document.body.dataset.snapshots) > n, seen, WAIT);

  await page.screenshot({ path: path.join(artifacts, "dashboard.png"), fullPage: true });
  result.dom = await readPage(page);
  process.stdout.write("DOM " + JSON.stringify(result.dom) + "\n");
  await answer();
  result.ok = true;
  finish();
})().catch(finish);
