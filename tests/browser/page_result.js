// page_result.js — how a page driver ends: one "RESULT {json}" line on
// stdout for the Python test, the browser closed, exit 0; bounded both
// ways (a browser that will not close, a page that never finishes).
"use strict";

// finisher(result, browserOf, giveUpMs): finish([error]) for a driver whose
// browser browserOf() returns (null before the launch); after giveUpMs it
// finishes with an error by itself.
module.exports = function finisher(result, browserOf, giveUpMs) {
  function finish(error) {
    if (error) result.error = String(error && error.stack || error);
    process.stdout.write("RESULT " + JSON.stringify(result) + "\n");
    const done = () => process.exit(0);
    const browser = browserOf();
    if (browser) browser.close().then(done, done); else done();
    setTimeout(done, 5000);
  }
  setTimeout(() => finish("gave up after " + giveUpMs / 1000 + " s"), giveUpMs);
  return finish;
};
