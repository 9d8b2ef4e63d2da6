// camd's events screen: the event history with thumbnails, filtered by
// type and day, the calls among them (rung, answered, missed), kept up to date by the event stream (shell.js), and the count of
// events not seen yet on the navigation's badge.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const seenKey = "camd-events-seen";
  const text = camdText.events; // text.js

  // window.camdEvents exposes the screen's state for people and tests.
  const ev = (window.camdEvents = { shown: 0, unread: 0, types: [], live: 0, error: null });

  const seen = () => Number(localStorage.getItem(seenKey)) || 0;
  let newest = 0; // the newest event ID this page knows
  let unread = new Set();

  function badge() {
    ev.unread = unread.size;
    $("unread").textContent = unread.size > 99 ? "99+" : String(unread.size);
    $("unread").hidden = unread.size === 0;
    $("unread").setAttribute("aria-label", text.unread(unread.size));
  }

  // markSeen: the events on screen have been seen.
  function markSeen() {
    if (newest > seen()) localStorage.setItem(seenKey, String(newest));
    unread.clear();
    badge();
  }

  // matches reports whether an event's type is in the filter (a list of
  // types, family.* for a family; "" for all).
  function matches(type, filter) {
    if (!filter) return true;
    return filter.split(",").some((f) => (f.endsWith(".*") ? type.startsWith(f.slice(0, -1)) : type === f));
  }

  // callKind marks the calls' history on the list: rung, answered,
  // missed (and declined, ended).
  const callKind = {
    "doorbell.pressed": "rung",
    "call.ringing": "rung",
    "call.answered": "answered",
    "call.ended": "answered",
    "call.declined": "missed",
    "call.missed": "missed",
  };

  // day is the chosen day's range ("" for any day), local time.
  function day() {
    const v = $("evDay").value;
    if (!v) return null;
    const [y, m, d] = v.split("-").map(Number);
    return [new Date(y, m - 1, d), new Date(y, m - 1, d + 1)];
  }

  const when = (t) => new Date(t).toLocaleString([], { dateStyle: "short", timeStyle: "medium" });

  // thumbnail draws an event's snapshot small, fetched with the
  // credential (the page's policy allows no blob: images).
  async function thumbnail(canvas, id) {
    try {
      const blob = await (await camdShell.api("GET", "/api/v1/snapshots/" + encodeURIComponent(id))).blob();
      const img = await createImageBitmap(blob, { resizeWidth: 192, resizeHeight: 108 });
      canvas.width = img.width;
      canvas.height = img.height;
      canvas.getContext("2d").drawImage(img, 0, 0);
      canvas.dataset.loaded = "1";
    } catch {
      canvas.title = text.noPicture;
    }
  }

  function item(e) {
    const li = document.createElement("li");
    li.dataset.id = e.id;
    li.dataset.type = e.type;
    if (e.id > seen()) li.classList.add("new");
    if (e.snapshot && !e.snapshot_missing) {
      const c = document.createElement("canvas");
      c.setAttribute("role", "img");
      c.setAttribute("aria-label", text.picture);
      thumbnail(c, e.snapshot);
      li.append(c);
    }
    const body = document.createElement("div");
    body.className = "grow";
    const what = document.createElement("div");
    what.textContent = e.message || e.type;
    const meta = document.createElement("div");
    meta.className = "muted";
    meta.textContent = when(e.time) + " · " + e.type;
    body.append(what, meta);
    li.append(body);
    if (callKind[e.type]) li.classList.add("call", callKind[e.type]);
    if (e.clip) {
      // The clip plays at its time on the timeline.
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = text.playClip;
      b.onclick = () => window.camdRecPlay(e.clip.from);
      li.append(b);
    }
    return li;
  }

  function status(msg) {
    $("evStatus").textContent = msg;
  }

  // passes reports whether an event passes the filters of type and day.
  function passes(e) {
    const d = day();
    const t = Date.parse(e.time);
    return matches(e.type, $("evType").value) && (!d || (t >= d[0] && t < d[1]));
  }

  // heard: the latest live events, for a list answered before they came.
  const heard = [];
  let loads = 0; // counts the loads: only the latest one's answer shows

  async function load() {
    const g = ++loads;
    const type = $("evType").value;
    const q = new URLSearchParams({ limit: "50" });
    if (type) q.set("type", type);
    const d = day();
    if (d) {
      q.set("from", d[0].toISOString());
      q.set("to", d[1].toISOString());
    }
    let list;
    try {
      list = await camdShell.json("GET", "/api/v1/events?" + q);
    } catch (err) {
      if (g !== loads) return;
      ev.error = err.message;
      status(err.message);
      return;
    }
    if (g !== loads) return;
    ev.error = null;
    // The events heard while the list was on its way, newest first.
    const top = list.length ? list[0].id : 0;
    list = heard.filter((e) => e.id > top && passes(e)).reverse().concat(list);
    $("evList").replaceChildren(...list.map(item));
    ev.shown = list.length;
    ev.types = list.map((e) => e.type);
    for (const e of list) {
      newest = Math.max(newest, e.id);
      if (e.id > seen()) unread.add(e.id);
    }
    status(list.length ? "" : text.none(!!type, !!d));
    if (camdShell.screen === "events") markSeen();
    else badge();
  }

  // A live event: on the list when it passes the filter, unread unless
  // the list is on screen.
  camdShell.follow((e) => {
    newest = Math.max(newest, e.id);
    ev.live++;
    heard.push(e);
    if (heard.length > 50) heard.shift();
    if (passes(e)) {
      $("evList").prepend(item(e));
      ev.shown++;
      ev.types.unshift(e.type);
      status("");
    }
    if (camdShell.screen === "events" && !document.hidden) markSeen();
    else {
      unread.add(e.id);
      badge();
    }
  }, load);

  document.addEventListener("camd:screen", (s) => {
    if (s.detail === "events") load();
  });
  $("evType").onchange = load;
  $("evDay").onchange = load;
  $("evRefresh").onclick = load;
})();
