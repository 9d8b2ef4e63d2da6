// camd recordings: a day's timeline (recorded stretches, motion, rings
// and missed calls), playback from any point in windows that move on,
// the next and previous event, export of a range with its progress, and
// snapshots. The credential is the one app.js keeps after pairing.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const minute = 60 * 1000;
  // windowMs is how much recording one request fetches to play: a tap
  // anywhere plays from there, and the next window is fetched while this
  // one plays, so a whole day can be watched a minute at a time.
  const windowMs = minute;

  // window.camdRec exposes the state for people and for tests.
  const rec = (window.camdRec = {
    day: "", spans: 0, recordedS: 0, markers: [], view: null,
    tapped: null, // the time the last tap (or event) asked to play from, ms
    playhead: null, // the recording's time on screen, ms
    windowStart: null, // where the window playing starts, ms
    playing: null, // the range of the window playing
    playedS: 0, // seconds played since the last tap
    export: null, // {received, total, outcome}
    snapshot: null, error: null,
  });

  const text = camdText.rec; // text.js
  const markerClass = { motion: "motion", "doorbell.pressed": "ring", "call.missed": "missed" };

  const fmt = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const hm = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const duration = (s) => (s >= 3600 ? Math.floor(s / 3600) + " h " : "") + Math.floor((s % 3600) / 60) + " min";
  const iso = (t) => new Date(t).toISOString();
  const pad = (n) => String(n).padStart(2, "0");
  const dayOf = (t) => {
    const d = new Date(t);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  };
  // dayRange is the chosen day's start and end, local time (a day is 23
  // or 25 hours when the clocks change).
  function dayRange(day = rec.day) {
    const [y, m, d] = day.split("-").map(Number);
    return [new Date(y, m - 1, d).getTime(), new Date(y, m - 1, d + 1).getTime()];
  }
  // atTime is a time of day ("HH:MM" or "HH:MM:SS") on the chosen day.
  function atTime(s) {
    const [h, m, sec] = s.split(":").map(Number);
    const [y, mo, d] = rec.day.split("-").map(Number);
    return new Date(y, mo - 1, d, h, m, sec || 0).getTime();
  }
  const timeOfDay = (t) => {
    const d = new Date(t);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  };

  function fail(msg) {
    rec.error = msg;
    $("recError").textContent = msg;
    $("recError").hidden = false;
  }
  function say(msg) {
    $("recError").hidden = true;
    $("tlAt").textContent = msg;
  }

  const api = (path) => camdShell.api("GET", path);
  let spans = []; // [{start, end}] in ms, of the chosen day

  function setDay(day) {
    rec.day = day;
    $("tlDay").value = day;
  }

  async function refresh() {
    if (!camdShell.paired()) return;
    const [from, to] = dayRange();
    let tl, evs;
    try {
      tl = await (await api("/api/v1/recordings?from=" + iso(from) + "&to=" + iso(to))).json();
      const q = new URLSearchParams({ type: Object.keys(markerClass).join(","), from: iso(from), to: iso(to), limit: "1000" });
      evs = await camdShell.json("GET", "/api/v1/events?" + q);
    } catch (e) {
      fail(text.timelineFailed(e.message));
      return;
    }
    $("recError").hidden = true;
    spans = tl.spans.map((s) => ({ start: Date.parse(s.start), end: Date.parse(s.end) }));
    rec.spans = spans.length;
    rec.recordedS = tl.recorded_s;
    rec.markers = evs
      .map((e) => ({ id: e.id, type: e.type, time: Date.parse(e.time), message: e.message || e.type }))
      .sort((a, b) => a.time - b.time);
    const st = tl.status;
    $("recStatus").textContent = text.status(st.recorder.mode, (st.bytes / 1048576).toFixed(1), (st.quota_bytes / 1048576).toFixed(0), st.paused, duration(tl.recorded_s));
    // Export: the last minute recorded, until a tap chooses.
    const last = spans[spans.length - 1];
    if (last && !$("exFrom").value) {
      $("exFrom").value = timeOfDay(Math.max(last.start, last.end - minute));
      $("exTo").value = timeOfDay(last.end);
    }
    if (!spans.length) say(text.nothingRecorded);
    render();
  }

  // view is the part of the day the bar shows: the whole day, or the
  // zoom's minutes around the playhead (else the newest recording).
  function view() {
    const [from, to] = dayRange();
    const z = Number($("tlZoom").value) * minute;
    if (z >= to - from) return { from, to };
    let c = rec.playhead;
    if (c === null || c < from || c >= to) c = spans.length ? spans[spans.length - 1].end : (from + to) / 2;
    const f = Math.min(Math.max(c - z / 2, from), to - z);
    return { from: f, to: f + z };
  }

  const pos = (t) => ((t - rec.view.from) / (rec.view.to - rec.view.from)) * 100;

  function render() {
    const v = (rec.view = view());
    const bar = $("recBar");
    bar.replaceChildren();
    bar.classList.toggle("day", v.to - v.from >= 23 * 60 * minute); // 3-hour ticks
    for (const s of spans) {
      if (s.end <= v.from || s.start >= v.to) continue;
      const el = document.createElement("div");
      el.className = "span";
      el.title = fmt(s.start) + " – " + fmt(s.end);
      const a = Math.max(s.start, v.from), b = Math.min(s.end, v.to);
      el.style.setProperty("left", pos(a) + "%");
      el.style.setProperty("width", Math.max(pos(b) - pos(a), 0.3) + "%");
      bar.append(el);
    }
    // The markers are drawn, not buttons of their own (8 px is too small
    // a target for a finger): a tap on the markers' row plays from the
    // nearest within reach (click, below); ◀ Event and Event ▶ reach
    // them by keyboard.
    for (const m of rec.markers) {
      if (m.time < v.from || m.time >= v.to) continue;
      const b = document.createElement("span");
      b.className = "marker " + markerClass[m.type];
      b.dataset.type = m.type;
      b.title = text.markerAt(text.labels[m.type], fmt(m.time));
      b.style.setProperty("left", pos(m.time) + "%");
      bar.append(b);
    }
    const head = document.createElement("div");
    head.id = "playhead";
    head.className = "playhead";
    bar.append(head);
    movePlayhead();
    const short = v.to - v.from <= 10 * minute ? fmt : hm;
    $("recFrom").textContent = short(v.from);
    $("recTo").textContent = v.to === dayRange()[1] ? "24:00" : short(v.to);
  }

  function movePlayhead() {
    const head = $("playhead");
    const t = rec.playhead;
    const shown = t !== null && rec.view && t >= rec.view.from && t < rec.view.to;
    if (head) {
      head.hidden = !shown;
      if (shown) head.style.setProperty("left", pos(t) + "%");
    }
    const bar = $("recBar");
    const [from] = dayRange();
    bar.setAttribute("aria-valuenow", t === null ? "0" : String(Math.round((t - from) / 1000)));
    bar.setAttribute("aria-valuetext", t === null ? text.nothingPlaying : fmt(t));
  }

  // under is the time under a pointer on the bar.
  function under(e) {
    const r = $("recBar").getBoundingClientRect();
    const v = rec.view;
    if (!v || r.width === 0) return null;
    return v.from + (Math.min(Math.max(e.clientX - r.left, 0), r.width) / r.width) * (v.to - v.from);
  }
  // markerAt is the marker a tap on the markers' row (the bar's top
  // third) reaches: the nearest within 12 px (a 24 px target).
  function markerAt(e) {
    const r = $("recBar").getBoundingClientRect();
    if (e.clientY - r.top > r.height / 3) return null;
    let best = null, dist = 12;
    for (const m of rec.markers) {
      if (m.time < rec.view.from || m.time >= rec.view.to) continue;
      const x = r.left + (pos(m.time) / 100) * r.width;
      if (Math.abs(x - e.clientX) <= dist) [best, dist] = [m, Math.abs(x - e.clientX)];
    }
    return best;
  }
  // A finger or a mouse dragged along the bar shows the time under it; a
  // tap (or the release of a drag) plays from there.
  $("recBar").addEventListener("pointermove", (e) => {
    const t = e.buttons ? under(e) : null;
    if (t !== null) $("tlAt").textContent = "▸ " + fmt(t);
  });
  $("recBar").addEventListener("click", (e) => {
    const t = under(e);
    if (t === null) return;
    const m = markerAt(e);
    playFrom(m ? m.time : t);
  });
  $("recBar").addEventListener("keydown", (e) => {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    e.preventDefault();
    const step = (e.shiftKey ? 60 : 10) * 1000 * (e.key === "ArrowLeft" ? -1 : 1);
    playFrom((rec.playhead ?? dayRange()[0]) + step);
  });

  // Playback: the windows of recording, each one MP4 of windowMs fetched
  // with the credential; the next is fetched while one plays.
  let gen = 0; // counts the taps: a window a later tap replaced is dropped
  let cur = null; // {start, end, url, query}
  let next = null; // a promise of the window after cur

  // loadWindow fetches the recording from t for windowMs: null when
  // nothing was recorded in it.
  async function loadWindow(t) {
    const query = "from=" + iso(t) + "&to=" + iso(t + windowMs);
    let res;
    try {
      res = await api("/api/v1/recordings/export?" + query);
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
    const start = Date.parse(res.headers.get("X-Camd-Start")), end = Date.parse(res.headers.get("X-Camd-End"));
    return { start, end, query, url: URL.createObjectURL(await res.blob()) };
  }

  // nextSpan is the first stretch recorded after t on the chosen day.
  const nextSpan = (t) => spans.find((s) => s.start > t);

  // playFrom plays the recording from t (a tap, an event, a clip).
  async function playFrom(t) {
    t = Math.round(t);
    const g = ++gen;
    // The window playing stops: its time is no longer the playhead's.
    $("playback").pause();
    if (cur) URL.revokeObjectURL(cur.url);
    cur = next = null;
    if (camdShell.screen !== "timeline") location.hash = "#timeline";
    rec.tapped = t;
    rec.playedS = 0;
    rec.error = null;
    if (dayOf(t) !== rec.day) {
      setDay(dayOf(t));
      await refresh();
      if (g !== gen) return;
    }
    rec.playhead = t;
    movePlayhead();
    $("exFrom").value = timeOfDay(t);
    $("exTo").value = timeOfDay(Math.min(t + minute, dayRange()[1] - 1000));
    say(text.loading(fmt(t)));
    let w;
    try {
      w = await loadWindow(t);
    } catch (e) {
      if (g === gen) fail(text.playbackFailed(e.message));
      return;
    }
    if (g !== gen) {
      if (w) URL.revokeObjectURL(w.url);
      return;
    }
    if (!w) {
      const s = nextSpan(t);
      if (s) return playFrom(s.start);
      say(text.nothingAfter(fmt(t)));
      return;
    }
    show(w, t);
  }

  // show plays window w from t.
  function show(w, t) {
    const v = $("playback");
    if (cur) URL.revokeObjectURL(cur.url);
    cur = w;
    next = null;
    rec.playing = w.query;
    rec.windowStart = w.start;
    v.hidden = false;
    v.src = w.url;
    v.addEventListener(
      "loadedmetadata",
      () => {
        v.currentTime = Math.max(0, (t - w.start) / 1000);
        v.play().catch(() => {});
      },
      { once: true },
    );
    say(text.playing(fmt(t)));
  }

  let lastTime = 0;
  // A seek (to the tapped time, or the viewer's) is not time played.
  $("playback").addEventListener("seeking", () => (lastTime = $("playback").currentTime));
  $("playback").addEventListener("emptied", () => (lastTime = 0));
  $("playback").addEventListener("timeupdate", () => {
    const v = $("playback");
    if (!cur) return;
    const d = v.currentTime - lastTime;
    if (d > 0 && d < 1) rec.playedS += d;
    lastTime = v.currentTime;
    const before = rec.playhead;
    rec.playhead = cur.start + v.currentTime * 1000;
    const day = dayOf(rec.playhead);
    if (day !== rec.day && before != null && dayOf(before) === rec.day) {
      // Played past midnight while its day was shown: the next day's
      // bar, with the playhead on it. (A day the owner went to while
      // playback goes on stays shown.)
      setDay(day);
      refresh();
    } else if (day === rec.day && rec.view && (rec.playhead >= rec.view.to || rec.playhead < rec.view.from)) render();
    else movePlayhead();
    // The next window, fetched half way through this one.
    if (!next && cur.end - rec.playhead < windowMs / 2) {
      const g = gen, from = cur.end;
      next = loadWindow(from).catch(() => null);
      next.then((w) => {
        if (w && g !== gen) URL.revokeObjectURL(w.url);
      });
    }
  });
  $("playback").addEventListener("ended", async () => {
    if (!cur) return;
    const g = gen, from = cur.end;
    const w = await (next || loadWindow(from).catch(() => null));
    if (g !== gen) return;
    if (w) return show(w, from);
    const s = nextSpan(from);
    if (s) playFrom(s.start);
    else say(text.end);
  });

  // step plays from the next (dir 1) or previous (-1) event of the day.
  function step(dir) {
    const at = rec.playhead ?? (dir > 0 ? dayRange()[0] - 1 : dayRange()[1]);
    const m = dir > 0 ? rec.markers.find((m) => m.time > at + 500) : rec.markers.findLast((m) => m.time < at - 2000);
    if (m) playFrom(m.time);
    else say(text.noEvent(dir > 0));
  }

  // exportRange fetches the range chosen as one MP4, showing the bytes
  // received against those expected, and offers the file.
  async function exportRange() {
    const a = $("exFrom").value, b = $("exTo").value;
    const from = a && atTime(a), to = b && atTime(b);
    const out = (rec.export = { received: 0, total: 0, outcome: null });
    const done = (msg) => {
      out.outcome = msg;
      $("exStatus").textContent = msg;
    };
    $("recDownload").hidden = true;
    if (!from || !to || to <= from) return done(text.badRange);
    const p = $("exProgress");
    p.hidden = false;
    p.value = 0;
    $("exStatus").textContent = text.exporting(a, b);
    let blob, res;
    try {
      res = await api("/api/v1/recordings/export?from=" + iso(from) + "&to=" + iso(to));
      out.total = Number(res.headers.get("Content-Length")) || 0;
      const reader = res.body.getReader();
      const chunks = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(value);
        out.received += value.length;
        if (out.total) p.value = out.received / out.total;
        else p.removeAttribute("value");
      }
      blob = new Blob(chunks, { type: "video/mp4" });
    } catch (e) {
      p.hidden = true;
      return done(text.exportFailed(e.message));
    }
    p.value = 1;
    const start = Date.parse(res.headers.get("X-Camd-Start")), end = Date.parse(res.headers.get("X-Camd-End"));
    const link = $("recDownload");
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = "camd-" + iso(start).replace(/[:.]/g, "") + ".mp4";
    link.hidden = false;
    done(text.exported(fmt(start), fmt(end), ((end - start) / 1000).toFixed(0), (blob.size / 1048576).toFixed(1) + " MB"));
  }

  // watch plays a range over WebRTC in the live player (app.js), in real
  // time; camd ends the session when the range does.
  function watch(start, end) {
    location.hash = "#live";
    window.camdWatch("/api/v1/recordings/whep?from=" + iso(Date.parse(start)) + "&to=" + iso(Date.parse(end)));
  }

  function shiftDay(n) {
    const [from] = dayRange();
    const d = new Date(from);
    d.setDate(d.getDate() + n);
    setDay(dayOf(d));
    refresh();
  }

  $("recRefresh").onclick = refresh;
  $("tlDay").onchange = () => {
    if ($("tlDay").value) rec.day = $("tlDay").value;
    refresh();
  };
  $("tlPrevDay").onclick = () => shiftDay(-1);
  $("tlNextDay").onclick = () => shiftDay(1);
  $("tlZoom").onchange = render;
  $("tlPrevEvent").onclick = () => step(-1);
  $("tlNextEvent").onclick = () => step(1);
  $("exGo").onclick = exportRange;
  $("snapButton").onclick = () => window.camdLive.snapshot($("snapshot")).catch((e) => fail(text.snapshotFailed(e.message)));
  // camdRecPlay plays from a time (an event's clip: its start).
  window.camdRecPlay = (from) => playFrom(Date.parse(from));
  window.camdRecWatch = watch;
  setDay(dayOf(Date.now()));
  refresh();
  document.addEventListener("camd:screen", (e) => {
    if (e.detail === "timeline") refresh();
  });
  setInterval(() => {
    if (camdShell.screen === "timeline") refresh();
  }, 10000);
})();
