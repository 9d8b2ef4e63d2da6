// camd's stream keys, on the users screen (docs/security.md, "Stream
// keys"): the keys that work (never their secrets), making one for a user
// or a device (its secret shown once, here), and revoking one.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const text = camdText.keys; // text.js

  // window.camdKeys exposes the section's state for people and tests.
  const ks = (window.camdKeys = { keys: [], shown: null, loads: 0, error: null });

  function status(msg, isError) {
    ks.error = isError ? msg : null;
    $("keysStatus").textContent = msg;
    $("keysStatus").className = isError ? "error" : "";
  }

  function keyItem(k) {
    const li = document.createElement("li");
    li.dataset.id = k.id;
    const what = document.createElement("span");
    what.className = "grow";
    what.textContent = text.item(k, new Date(k.created).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }));
    const revoke = camdShell.button(text.revoke, async () => {
      if (!camdShell.confirmed(revoke, text.confirmRevoke(k.for))) return;
      status(text.revoking);
      try {
        await camdShell.json("DELETE", "/api/v1/keys/" + encodeURIComponent(k.id));
        if (ks.shown && ks.shown.id === k.id) hideSecret();
        await load();
        status(text.revoked(k.for));
      } catch (err) {
        status(err.message, true);
      }
    });
    li.append(what, revoke);
    return li;
  }

  async function load() {
    const keys = await camdShell.json("GET", "/api/v1/keys");
    ks.keys = keys.map((k) => ({ id: k.id, for: k.for }));
    $("keyList").replaceChildren(...keys.map(keyItem));
    if (!keys.length) $("keyList").replaceChildren(Object.assign(document.createElement("li"), { textContent: text.none }));
    ks.loads++;
  }

  function hideSecret() {
    ks.shown = null;
    $("keyShown").hidden = true;
    for (const id of ["keyToken", "keyID", "keySecret", "keyRTSP"]) $(id).textContent = "";
  }

  async function add() {
    const who = $("keyFor").value.trim();
    if (!who) {
      status(text.forWhom, true);
      $("keyFor").focus();
      return;
    }
    status(text.making);
    try {
      const k = await camdShell.json("POST", "/api/v1/keys", { for: who, scope: "view" });
      $("keyToken").textContent = k.token;
      $("keyID").textContent = k.id;
      $("keySecret").textContent = k.secret;
      $("keyRTSP").textContent = k.rtsp || "";
      $("keyRTSP").parentElement.hidden = $("keyRTSPLabel").hidden = !k.rtsp;
      $("keyShown").hidden = false;
      ks.shown = { id: k.id, token: k.token };
      $("keyFor").value = "";
      await load();
      status(text.made);
    } catch (err) {
      status(err.message, true);
    }
  }

  document.addEventListener("camd:screen", (s) => {
    if (s.detail === "users") {
      hideSecret(); // a secret is shown once, not again on a later visit
      load().catch((err) => status(err.message, true));
    }
  });
  $("keyAdd").onclick = add;
})();
