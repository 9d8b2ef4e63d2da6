// camd's device screen: the camera's name (the owner renames it), its
// firmware, ID and the certificate the pairing code named; for the owner
// its storage and card (check, format), updates (check, install), Wi-Fi
// (networks in range, join, forget), its log and crash reports (send or
// delete); for everyone this phone's notifications (Web Push) and how a
// factory reset is done. Each part says what it is doing and how it ended.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const text = camdText.device; // text.js

  // window.camdDevice exposes the screen's state for people and tests.
  const dv = (window.camdDevice = { loaded: false, owner: false, push: "unknown", crashes: [], nets: [], log: 0 });

  const when = (t) => new Date(t).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  function size(b) {
    const u = ["bytes", "KB", "MB", "GB", "TB"];
    let i = 0;
    for (; b >= 1000 && i < u.length - 1; i++) b /= 1000;
    return (i ? b.toFixed(1) : b) + " " + u[i];
  }

  // say shows a sentence on one of the screen's status lines.
  function say(id, msg, isError) {
    $(id).textContent = msg;
    $(id).className = isError ? "error" : "";
  }

  // act runs an action, says it is under way, reloads its part of the
  // screen, and then says how the action ended.
  async function act(id, doing, f, reload) {
    say(id, doing);
    let msg, failed = false;
    try {
      msg = (await f()) || text.done;
    } catch (err) {
      [msg, failed] = [err.message, true];
    }
    if (reload) {
      await reload().catch((err) => {
        if (!failed) [msg, failed] = [err.message, true];
      });
    }
    say(id, msg, failed);
  }

  const { button, confirmed } = camdShell;

  function pairs(dl, rows) {
    const out = [];
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === "") continue;
      out.push(Object.assign(document.createElement("dt"), { textContent: k }), Object.assign(document.createElement("dd"), { textContent: v }));
    }
    dl.replaceChildren(...out);
  }

  // About the camera.
  async function loadAbout() {
    const [me, health] = await Promise.all([camdShell.json("GET", "/api/v1/me"), fetch("/health").then((r) => r.json())]);
    dv.owner = me.user.role === "owner";
    for (const el of document.querySelectorAll("#device .owner")) el.hidden = !dv.owner;
    $("devName").value = me.name || "";
    $("devName").readOnly = !dv.owner;
    $("devVersion").textContent = health.version || "–";
    $("devID").textContent = me.device_id;
    const pin = localStorage.getItem("camd-pin");
    $("devPin").textContent = pin ? pin + text.pinNote : text.pinUnknown;
  }

  function rename() {
    // A refused name stays in the box, to be fixed.
    act("devStatus", text.renaming, async () => {
      await camdShell.json("PATCH", "/api/v1/settings", { name: $("devName").value });
      await loadAbout();
      return text.renamed;
    });
  }

  // Storage and its card.
  let card = null;
  async function loadStorage() {
    const s = await camdShell.json("GET", "/api/v1/recordings/status");
    card = s.card || null;
    const l = text.storage;
    pairs($("devStorage"), [
      [l.recordings, text.used(size(s.bytes), size(s.quota_bytes))],
      [l.space, s.free_bytes ? text.free(size(s.free_bytes)) : null],
      [l.kept, s.oldest && s.newest ? text.span(when(s.oldest), when(s.newest)) : null],
      [l.paused, s.paused || null],
      [l.card, card ? text.cardState(card) : text.noCard],
      [l.cardError, card && (card.error || card.last_error) ? card.error || card.last_error : null],
      [l.cardIs, card && card.busy ? card.busy : null],
    ]);
    $("devCheck").hidden = $("devFormat").hidden = !card;
    dv.card = card ? { present: card.present, device: card.device || "" } : null;
  }

  function checkCard(e) {
    if (!confirmed(e.target, text.confirmCheck)) return;
    act("devStorageStatus", text.checking, async () => text.cardDone(await camdShell.json("POST", "/api/v1/storage/check", {})), loadStorage);
  }

  function formatCard(e) {
    const dev = (card && card.device) || text.theCard;
    if (!confirmed(e.target, text.confirmFormat(dev))) return;
    act("devStorageStatus", text.formatting, async () => text.cardDone(await camdShell.json("POST", "/api/v1/storage/format", { confirm: "format " + dev })), loadStorage);
  }

  // Updates.
  let offered = null;
  function showUpdate(u) {
    offered = u.available ? u.available.version : null;
    const parts = [];
    if (u.state && text.updState[u.state]) parts.push(text.updState[u.state]);
    if (u.progress && u.progress.total) parts.push(text.updProgress(Math.round((100 * u.progress.done) / u.progress.total)));
    parts.push(u.available ? text.updOffer(u.available, size(u.available.size)) : text.updNone(u.last_check && when(u.last_check)));
    if (!u.enabled) parts.push(text.updOff);
    if (u.last_error) parts.push(u.last_error);
    $("devUpdate").textContent = parts.join(" ");
    $("devUpdApply").hidden = !offered || (u.state && u.state !== "idle");
    $("devUpdApply").textContent = text.install(offered);
    dv.update = { enabled: u.enabled, offered };
  }

  async function loadUpdate() {
    try {
      showUpdate(await camdShell.json("GET", "/api/v1/update"));
      $("devUpdCheck").hidden = false;
    } catch (err) {
      if (err.status !== 503) throw err;
      $("devUpdate").textContent = text.updUnavailable;
      $("devUpdCheck").hidden = $("devUpdApply").hidden = true;
    }
  }

  function checkUpdate() {
    act("devUpdStatus", text.updChecking, async () => {
      showUpdate(await camdShell.json("POST", "/api/v1/update/check", {}));
      return text.updChecked;
    });
  }

  function applyUpdate(e) {
    if (!offered || !confirmed(e.target, text.confirmApply(offered))) return;
    act("devUpdStatus", text.applying, async () => {
      await camdShell.json("POST", "/api/v1/update/apply", { version: offered });
      return text.applying;
    }, loadUpdate);
  }

  // Wi-Fi.
  async function loadWifi() {
    try {
      const s = await camdShell.json("GET", "/api/v1/network/wifi");
      $("devWifi").textContent = text.wifi(s);
      $("devForget").hidden = !s.saved;
      $("devScan").hidden = false;
      dv.wifi = { state: s.state, ssid: s.ssid || "" };
    } catch (err) {
      if (err.status !== 503 && err.status !== 404) throw err;
      $("devWifi").textContent = text.wifiOff;
      $("devScan").hidden = $("devForget").hidden = true;
    }
  }

  function pick(n) {
    $("devSSID").value = n.ssid;
    $("devPass").value = "";
    $("devPass").parentElement.hidden = n.security === "open";
    $("devJoin").hidden = false;
    (n.security === "open" ? $("devJoinGo") : $("devPass")).focus();
  }

  function scan() {
    act("devWifiStatus", text.scanning, async () => {
      const nets = await camdShell.json("GET", "/api/v1/network/wifi/scan");
      dv.nets = nets.map((n) => n.ssid);
      $("devNets").replaceChildren(
        ...nets.map((n) => {
          const li = document.createElement("li");
          li.dataset.ssid = n.ssid;
          const what = Object.assign(document.createElement("span"), { className: "grow", textContent: n.ssid + " · " + n.security + " · " + n.signal_dbm + " dBm" });
          li.append(what, button(text.join, () => pick(n)));
          return li;
        }),
      );
      return text.scanned(nets.length);
    });
  }

  function join() {
    const ssid = $("devSSID").value;
    const body = { ssid };
    if (!$("devPass").parentElement.hidden) body.passphrase = $("devPass").value;
    act("devWifiStatus", text.joining(ssid), async () => {
      try {
        await camdShell.json("POST", "/api/v1/network/wifi", body);
      } catch (err) {
        if (text.joinFailed[err.reason]) err.message = text.joinFailed[err.reason];
        throw err;
      }
      $("devJoin").hidden = true;
      $("devPass").value = "";
      return text.joined(ssid);
    }, loadWifi);
  }

  function forget(e) {
    if (!confirmed(e.target, text.confirmForget)) return;
    act("devWifiStatus", text.forgetting, async () => {
      await camdShell.json("DELETE", "/api/v1/network/wifi");
      return text.forgotten;
    }, loadWifi);
  }

  // The log.
  function showLog() {
    act("devLogStatus", text.logLoading, async () => {
      const l = await camdShell.json("GET", "/api/v1/logs?limit=200&level=" + encodeURIComponent($("devLogLevel").value));
      const lines = l.entries.map((e) => {
        const { seq, time, level, msg, ...rest } = e;
        const extra = Object.entries(rest).map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v)));
        return [new Date(time).toLocaleTimeString(), level, msg, ...extra].join(" ");
      });
      dv.log = lines.length;
      $("devLog").textContent = lines.join("\n");
      $("devLog").hidden = !lines.length;
      return lines.length ? text.logLines(lines.length) : text.logEmpty;
    });
  }

  // Crash reports: kept on the camera until the owner sends or deletes
  // them.
  async function loadCrashes() {
    const list = (await camdShell.json("GET", "/api/v1/crashes")).crashes || [];
    dv.crashes = list.map((c) => ({ id: c.id, sent: !!c.sent }));
    const path = (c) => "/api/v1/crashes/" + encodeURIComponent(c.id);
    $("devCrashes").replaceChildren(
      ...list.map((c) => {
        const li = document.createElement("li");
        li.dataset.id = c.id;
        const what = Object.assign(document.createElement("span"), { className: "grow", textContent: text.crash(c, when(c.time), c.sent && when(c.sent)) });
        const trace = Object.assign(document.createElement("pre"), { hidden: true });
        const view = button(text.show, async () => {
          try {
            trace.textContent = (await camdShell.json("GET", path(c))).trace;
            trace.hidden = !trace.hidden;
          } catch (err) {
            say("devCrashStatus", err.message, true);
          }
        });
        const send = button(text.send, () =>
          act("devCrashStatus", text.sending, async () => {
            await camdShell.json("POST", path(c) + "/send");
            return text.sent;
          }, loadCrashes),
        );
        const del = button(text.delete, (e) => {
          if (!confirmed(e.target, text.confirmDelete)) return;
          act("devCrashStatus", text.deleting, async () => {
            await camdShell.json("DELETE", path(c));
            return text.deleted;
          }, loadCrashes);
        });
        li.append(what, view, send, del, trace);
        return li;
      }),
    );
    if (!list.length) $("devCrashes").replaceChildren(Object.assign(document.createElement("li"), { textContent: text.crashNone }));
  }

  // Notifications on this phone (Web Push, docs/push.md): asked for only
  // when the person taps the button, never when the page loads.
  const pushable = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

  async function subscription() {
    const reg = await navigator.serviceWorker.ready;
    return reg.pushManager.getSubscription();
  }

  async function pushState() {
    if (!pushable()) return "unsupported";
    if (Notification.permission === "denied") return "blocked";
    const sub = await subscription();
    if (!sub || Notification.permission !== "granted") return "off";
    const mine = await camdShell.json("GET", "/api/v1/push/subscriptions");
    return mine.some((s) => s.endpoint === sub.endpoint) ? "on" : "off";
  }

  async function showPush() {
    dv.push = await pushState();
    $("pushState").textContent = text.push[dv.push];
    $("pushToggle").hidden = dv.push === "unsupported" || dv.push === "blocked";
    $("pushToggle").textContent = dv.push === "on" ? text.pushOff : text.pushOn;
  }

  // b64url is bytes as base64url, as a PushSubscription's keys are.
  const b64url = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const unb64url = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

  async function pushOn() {
    if ((await Notification.requestPermission()) !== "granted") return text.pushDenied;
    const { public_key } = await camdShell.json("GET", "/api/v1/push/vapid");
    const reg = await navigator.serviceWorker.ready;
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: unb64url(public_key) });
    const j = sub.toJSON();
    await camdShell.json("POST", "/api/v1/push/subscriptions", {
      endpoint: j.endpoint,
      keys: { p256dh: j.keys.p256dh || b64url(sub.getKey("p256dh")), auth: j.keys.auth || b64url(sub.getKey("auth")) },
    });
    return text.done;
  }

  async function pushOff() {
    const sub = await subscription();
    if (!sub) return text.done;
    const mine = await camdShell.json("GET", "/api/v1/push/subscriptions");
    for (const s of mine.filter((s) => s.endpoint === sub.endpoint)) await camdShell.json("DELETE", "/api/v1/push/subscriptions/" + encodeURIComponent(s.id));
    await sub.unsubscribe();
    return text.done;
  }

  function togglePush() {
    act("pushStatus", text.pushAsking, dv.push === "on" ? pushOff : pushOn, showPush);
  }

  async function load() {
    try {
      await loadAbout();
      say("devStatus", "");
    } catch (err) {
      say("devStatus", err.message, true);
      return;
    }
    const parts = [[showPush, "pushStatus"]];
    if (dv.owner) parts.push([loadStorage, "devStorageStatus"], [loadUpdate, "devUpdStatus"], [loadWifi, "devWifiStatus"], [loadCrashes, "devCrashStatus"]);
    await Promise.all(parts.map(([f, id]) => f().catch((err) => say(id, err.message, true))));
    dv.loaded = true;
  }

  document.addEventListener("camd:screen", (s) => {
    if (s.detail === "device") load();
  });
  $("devRename").onclick = rename;
  $("devCheck").onclick = checkCard;
  $("devFormat").onclick = formatCard;
  $("devUpdCheck").onclick = checkUpdate;
  $("devUpdApply").onclick = applyUpdate;
  $("devScan").onclick = scan;
  $("devJoinGo").onclick = join;
  $("devForget").onclick = forget;
  $("devLogShow").onclick = showLog;
  $("pushToggle").onclick = togglePush;
})();
