// camd's live screen controls besides the player (app.js): fullscreen,
// a snapshot saved on the camera and offered as a download, and the
// owner's picture settings (day and night, flip, mirror) at hand.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // window.camdLive exposes the controls' state for people and tests.
  const live = (window.camdLive = { snapshot, snap: null, picture: null, pictureSaved: 0, error: null });

  const text = camdText.live; // text.js

  function status(msg) {
    $("liveStatus").textContent = msg;
  }

  // Fullscreen: the video and its quality line fill the screen.
  $("fullscreen").onclick = async () => {
    try {
      if (document.fullscreenElement) await document.exitFullscreen();
      else await $("liveBox").requestFullscreen();
    } catch {
      status(text.noFullscreen);
    }
  };
  document.addEventListener("fullscreenchange", () => {
    $("fullscreen").textContent = document.fullscreenElement ? text.exitFullscreen : text.fullscreen;
  });

  // snapshot saves a picture of now on the camera (POST
  // /api/v1/snapshots), draws it on canvas and offers it as a download.
  async function snapshot(canvas = $("liveSnapShown")) {
    const snap = await camdShell.json("POST", "/api/v1/snapshots");
    const blob = await (await camdShell.api("GET", "/api/v1/snapshots/" + encodeURIComponent(snap.id))).blob();
    const img = await createImageBitmap(blob);
    canvas.width = img.width;
    canvas.height = img.height;
    canvas.getContext("2d").drawImage(img, 0, 0);
    canvas.hidden = false;
    const a = $("liveSnapSave");
    if (a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(blob);
    a.download = "camd-snapshot-" + snap.id + ".jpg";
    a.hidden = false;
    live.snap = { id: snap.id, width: img.width, height: img.height };
    window.camdRec.snapshot = live.snap;
    return snap;
  }
  $("liveSnap").onclick = async () => {
    status(text.taking);
    try {
      const snap = await snapshot();
      status(text.saved(new Date(snap.time || Date.now()).toLocaleTimeString()));
    } catch (e) {
      live.error = e.message;
      status(e.message);
    }
  };

  // The picture settings, the owner's (a viewer's phone does not show
  // them): each change is saved at once with one PATCH.
  const keys = ["night_mode", "flip", "mirror"];
  async function loadPicture() {
    if (!camdShell.paired()) return;
    let s;
    try {
      s = await camdShell.json("GET", "/api/v1/settings");
    } catch {
      $("picture").hidden = true; // a viewer, or the camera away
      return;
    }
    live.picture = {};
    for (const k of keys) {
      const el = $("pic-" + k);
      if (el.type === "checkbox") el.checked = !!s[k];
      else el.value = s[k];
      live.picture[k] = s[k];
    }
    $("picture").hidden = false;
  }
  for (const k of keys) {
    const el = $("pic-" + k);
    el.onchange = async () => {
      const value = el.type === "checkbox" ? el.checked : el.value;
      $("picStatus").textContent = text.saving;
      try {
        await camdShell.json("PATCH", "/api/v1/settings", { [k]: value });
        live.picture[k] = value;
        live.pictureSaved++;
        $("picStatus").textContent = text.savedPicture;
      } catch (e) {
        $("picStatus").textContent = e.message;
        loadPicture();
      }
    };
  }
  document.addEventListener("camd:screen", (e) => {
    if (e.detail === "live") loadPicture();
  });
  loadPicture();
})();
