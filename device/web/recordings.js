// camd recordings: the timeline of the last hours, playback of a span, and
// snapshots. The credential is the one app.js keeps after pairing.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // window.camdRec exposes the state for people and for tests.
  const rec = (window.camdRec = { spans: 0, recordedS: 0, playing: null, playedS: 0, snapshot: null, error: null });

  const hours = () => Number($("recHours").value) || 1;
  let blobURL = null;

  function fmt(t) {
    return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function fail(msg) {
    rec.error = msg;
    $("recError").textContent = msg;
    $("recError").hidden = false;
  }

  const api = (path) => camdShell.api("GET", path);

  async function refresh() {
    if (!camdShell.paired()) return;
    let tl;
    try {
      tl = await (await api("/api/v1/recordings?from=-" + hours() + "h&to=now")).json();
    } catch (e) {
      fail("Timeline: " + e.message);
      return;
    }
    $("recError").hidden = true;
    rec.spans = tl.spans.length;
    rec.recordedS = tl.recorded_s;
    const st = tl.status;
    $("recStatus").textContent =
      "mode " + st.recorder.mode + ", " + (st.bytes / 1048576).toFixed(1) + " MiB of " +
      (st.quota_bytes / 1048576).toFixed(0) + " MiB" + (st.paused ? ", PAUSED: " + st.paused : "");

    // The bar: the range, with the recorded spans drawn in.
    const from = Date.parse(tl.from), to = Date.parse(tl.to), width = to - from;
    const bar = $("recBar");
    bar.replaceChildren();
    for (const s of tl.spans) {
      const el = document.createElement("button");
      el.type = "button";
      el.className = "span";
      el.title = fmt(s.start) + " – " + fmt(s.end);
      const left = ((Date.parse(s.start) - from) / width) * 100;
      const w = Math.max(((Date.parse(s.end) - Date.parse(s.start)) / width) * 100, 0.3);
      el.style.setProperty("left", left + "%");
      el.style.setProperty("width", w + "%");
      el.onclick = () => play(s.start, s.end);
      bar.append(el);
    }
    $("recFrom").textContent = fmt(tl.from);
    $("recTo").textContent = fmt(tl.to);

    // The list: newest spans first.
    const list = $("recList");
    list.replaceChildren();
    for (const s of tl.spans.slice(-10).reverse()) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Play";
      b.onclick = () => play(s.start, s.end);
      const w = document.createElement("button");
      w.type = "button";
      w.textContent = "Watch";
      w.title = "play it over WebRTC in the live player";
      w.onclick = () => watch(s.start, s.end);
      const secs = (Date.parse(s.end) - Date.parse(s.start)) / 1000;
      li.append(b, " ", w, " " + fmt(s.start) + " – " + fmt(s.end) + " (" + secs.toFixed(0) + " s)");
      list.append(li);
    }
  }

  // spanQuery is the range of a span to play: its last 5 minutes at most.
  function spanQuery(start, end) {
    const e = Date.parse(end);
    const s = Math.max(Date.parse(start), e - 5 * 60 * 1000);
    return { s, q: "from=" + new Date(s).toISOString() + "&to=" + new Date(e).toISOString() };
  }

  // watch plays the span over WebRTC in the live player (app.js), in real
  // time; camd ends the session when the span does.
  function watch(start, end) {
    location.hash = "#live";
    window.camdWatch("/api/v1/recordings/whep?" + spanQuery(start, end).q);
  }

  // play fetches the span as one MP4 and plays it.
  async function play(start, end) {
    const { s, q } = spanQuery(start, end);
    location.hash = "#timeline";
    rec.playing = q;
    rec.playedS = 0;
    try {
      const blob = await (await api("/api/v1/recordings/export?" + q)).blob();
      if (blobURL) URL.revokeObjectURL(blobURL);
      blobURL = URL.createObjectURL(blob);
      const v = $("playback");
      v.hidden = false;
      v.src = blobURL;
      await v.play().catch(() => {});
      $("recDownload").href = "#";
      $("recDownload").onclick = (ev) => {
        ev.preventDefault();
        const a = document.createElement("a");
        a.href = blobURL;
        a.download = "camd-" + new Date(s).toISOString().replace(/[:.]/g, "") + ".mp4";
        a.click();
      };
      $("recDownload").hidden = false;
    } catch (err) {
      fail("Playback: " + err.message);
    }
  }

  async function snapshot() {
    try {
      const snap = await camdShell.json("POST", "/api/v1/snapshots");
      const img = await createImageBitmap(await (await api("/api/v1/snapshots/" + snap.id)).blob());
      const c = $("snapshot");
      c.width = img.width;
      c.height = img.height;
      c.getContext("2d").drawImage(img, 0, 0);
      c.hidden = false;
      rec.snapshot = { id: snap.id, width: img.width, height: img.height };
    } catch (err) {
      fail("Snapshot: " + err.message);
    }
  }

  $("playback").addEventListener("timeupdate", () => {
    rec.playedS = $("playback").currentTime;
  });
  $("recRefresh").onclick = refresh;
  $("recHours").onchange = refresh;
  $("snapButton").onclick = snapshot;
  window.camdRecPlay = play;
  window.camdRecWatch = watch;
  refresh();
  setInterval(refresh, 10000);
})();
