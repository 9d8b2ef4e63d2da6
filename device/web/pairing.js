// camd's pairing screen, what app.js does not: the certificate
// fingerprint the pairing code expects, shown for a code pasted or taken
// from a link (#pair=CAMD1:…, a fragment: it never reaches a server or its
// log). A page cannot read the certificate its browser accepted, so the
// person compares (docs/app.md, "Pairing from a link"); camctl pins it.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // window.camdPairing exposes what the screen shows, for tests.
  const pr = (window.camdPairing = { expected: null });

  // expect shows the fingerprint the code in the box expects (nothing
  // for a code that does not read).
  function expect() {
    let fp = null;
    try {
      fp = fingerprintText(parseCode($("code").value).fingerprint); // app.js
    } catch {
      fp = null;
    }
    pr.expected = fp;
    $("pairPinValue").textContent = fp || "";
    $("pairPin").hidden = !fp;
  }

  // app.js moves a link's code into the box (and out of the address)
  // before this script runs, and on each hashchange before this hears it.
  $("code").addEventListener("input", expect);
  window.addEventListener("hashchange", expect);
  expect();
})();
