// camd's snapshots gallery: the saved snapshots (GET /api/v1/snapshots),
// newest first, each opened large, downloaded as a JPEG, and deleted by
// an owner (a viewer sees no Delete: the route is the owner's).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const text = camdText.snapshots; // text.js

  // window.camdSnapshots exposes the screen's state for people and tests.
  const sn = (window.camdSnapshots = { loaded: false, ids: [], open: null, owner: false, download: null, error: null });

  const when = (t) => new Date(t).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
  const path = (id) => "/api/v1/snapshots/" + encodeURIComponent(id);

  function status(msg, isError) {
    sn.error = isError ? msg : null;
    $("snapStatus").textContent = msg;
    $("snapStatus").className = isError ? "error" : "";
  }

  // draw reads a snapshot with this phone's credential and draws it on a
  // canvas (the page's policy allows no blob: images); size is the
  // thumbnail's width, or 0 for the picture's own size.
  async function draw(canvas, id, size) {
    const blob = await (await camdShell.api("GET", path(id))).blob();
    const opts = size ? { resizeWidth: size, resizeHeight: Math.round((size * 9) / 16) } : {};
    const img = await createImageBitmap(blob, opts);
    canvas.width = img.width;
    canvas.height = img.height;
    canvas.getContext("2d").drawImage(img, 0, 0);
    canvas.dataset.loaded = "1";
    return blob;
  }

  function item(s) {
    const li = document.createElement("li");
    li.dataset.id = s.id;
    const b = document.createElement("button");
    b.type = "button";
    b.setAttribute("aria-label", text.open(when(s.time)));
    const c = document.createElement("canvas");
    c.width = 1;
    c.height = 1;
    const cap = document.createElement("span");
    cap.textContent = when(s.time) + (text.cause[s.cause] ? " · " + text.cause[s.cause] : "");
    b.append(c, cap);
    b.onclick = () => open(s);
    li.append(b);
    c.dataset.id = s.id;
    seen.observe(c);
    return li;
  }

  // seen draws a thumbnail once it scrolls into view: a full store holds
  // hundreds, and a phone asks for the ones it shows.
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      seen.unobserve(e.target);
      draw(e.target, e.target.dataset.id, 192).catch(() => {});
    }
  });

  async function load() {
    try {
      const [me, list] = await Promise.all([camdShell.json("GET", "/api/v1/me"), camdShell.json("GET", "/api/v1/snapshots")]);
      sn.owner = me.user.role === "owner";
      list.sort((a, b) => (a.time < b.time ? 1 : -1));
      sn.ids = list.map((s) => s.id);
      seen.disconnect();
      $("snapList").replaceChildren(...list.map(item));
      if (sn.open && !sn.ids.includes(sn.open)) close();
      sn.loaded = true;
      return list.length ? text.count(list.length) : text.none;
    } catch (err) {
      status(err.message, true);
      return null;
    }
  }

  async function refresh() {
    const msg = await load();
    if (msg !== null) status(msg);
  }

  let shown = null; // the open snapshot's JPEG

  async function open(s) {
    sn.open = s.id;
    shown = null;
    $("snapWhen").textContent = when(s.time);
    $("snapDelete").hidden = !sn.owner;
    if ($("snapDelete").dataset.armed) camdShell.confirmed($("snapDelete"), ""); // disarm: another snapshot
    $("snapView").hidden = false;
    try {
      shown = await draw($("snapBig"), s.id, 0);
      $("snapView").scrollIntoView({ block: "nearest" });
    } catch (err) {
      status(err.message, true);
    }
  }

  function close() {
    sn.open = null;
    shown = null;
    $("snapView").hidden = true;
  }

  // download saves the open snapshot's JPEG as a file.
  function download() {
    if (!shown) return;
    const name = "camd-" + $("snapWhen").textContent.replace(/[^0-9A-Za-z]+/g, "-") + ".jpg";
    const url = URL.createObjectURL(shown);
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    sn.download = { name, size: shown.size };
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    status(text.downloaded);
  }

  // remove deletes the open snapshot after a second tap.
  async function remove(e) {
    if (!camdShell.confirmed(e.target, text.confirmDelete)) return;
    const id = sn.open;
    status(text.deleting);
    try {
      await camdShell.json("DELETE", path(id));
      close();
      await load();
      status(text.deleted);
    } catch (err) {
      status(err.message, true);
    }
  }

  async function take() {
    status(text.taking);
    try {
      const s = await camdShell.json("POST", "/api/v1/snapshots");
      await load();
      status(text.taken);
      open(s);
    } catch (err) {
      status(err.message, true);
    }
  }

  document.addEventListener("camd:screen", (s) => {
    if (s.detail === "snapshots") refresh();
  });
  $("snapRefresh").onclick = refresh;
  $("snapTake").onclick = take;
  $("snapClose").onclick = close;
  $("snapDownload").onclick = download;
  $("snapDelete").onclick = remove;
})();
