// camd's app shell: the screens and the navigation between them, the API
// helper every screen uses (its errors are sentences, never raw JSON),
// the event stream the screens share, and the service worker.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const screens = ["live", "timeline", "events", "settings", "users", "snapshots", "device"];

  const text = camdText.shell; // text.js

  // The page's own text is in text.js too (its page part), for
  // translators: an element in index.html names its text by key, and
  // this fills it in before the other scripts run; the page is not
  // shown until then (html.filling, app.css).
  const pageText = camdText.page;
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = pageText[el.dataset.t];
  for (const [from, to] of [["data-t-aria", "aria-label"], ["data-t-placeholder", "placeholder"], ["data-t-title", "title"]]) {
    for (const el of document.querySelectorAll("[" + from + "]")) el.setAttribute(to, pageText[el.getAttribute(from)]);
  }
  document.documentElement.classList.remove("filling");

  // window.camdShell exposes the shell for the other scripts and tests.
  const shell = (window.camdShell = { screen: "live", events: "closed", sw: "none", text, api, json, follow, paired, button, confirmed });

  // button makes a button for the screens' lists.
  function button(label, onclick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.onclick = onclick;
    return b;
  }

  // confirmed asks for a second tap on b before what cannot be undone:
  // the first tap asks the question on the button and answers false.
  function confirmed(b, question) {
    if (b.dataset.armed) {
      delete b.dataset.armed;
      b.textContent = b.dataset.label;
      return true;
    }
    b.dataset.label = b.textContent;
    b.dataset.armed = "1";
    b.textContent = question;
    return false;
  }

  function paired() {
    return !!localStorage.getItem("camd-token");
  }

  // APIError is what api throws: message is a sentence for people; a
  // refused value names its field; reason is camd's word for why, when
  // it gives one (a Wi-Fi join's wrong_key…), for the screen to say.
  class APIError extends Error {
    constructor(message, status, field, reason) {
      super(message);
      this.status = status;
      this.field = field || null;
      this.reason = reason || null;
    }
  }

  // api calls camd with this phone's credential and returns the answer,
  // or throws an APIError.
  async function api(method, path, body) {
    if (!paired()) throw new APIError(text.pairFirst, 0);
    const init = { method, headers: { Authorization: "Bearer " + localStorage.getItem("camd-token") } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch {
      throw new APIError(text.unreachable, 0);
    }
    if (res.ok) return res;
    const j = await res.json().catch(() => ({}));
    switch (res.status) {
      case 401:
        throw new APIError(text.unpaired, 401);
      case 403:
        throw new APIError(text.ownerOnly, 403);
      case 404:
        throw new APIError(j.error || text.notFound, 404);
      case 422:
        if (j.field) throw new APIError(text.notAllowed(j.value, j.allowed), 422, j.field);
        break;
      case 429:
      case 503:
        throw new APIError(text.busy, res.status);
    }
    throw new APIError(j.error || text.refused(res.status + " " + res.statusText), res.status, null, j.reason);
  }

  // json calls camd and reads the answer's JSON (null for 204).
  async function json(method, path, body) {
    const res = await api(method, path, body);
    return res.status === 204 ? null : res.json();
  }

  // show switches to a screen; the screen's script hears "camd:screen".
  function show(name) {
    if (!screens.includes(name)) name = "live";
    shell.screen = name;
    document.body.classList.toggle("unpaired", !paired());
    for (const s of screens) $(s).hidden = s !== name;
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.dataset.screen === name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.dispatchEvent(new CustomEvent("camd:screen", { detail: name }));
  }
  const fromHash = () => {
    if (location.hash.startsWith("#pair=")) return; // app.js pairs
    show(location.hash.slice(1) || "live");
  };
  window.addEventListener("hashchange", fromHash);
  document.addEventListener("DOMContentLoaded", fromHash);

  // follow reads camd's event stream (server-sent events, read with fetch
  // so that the credential goes in a header), resumes it from the last
  // event seen, and hands each event to the listeners; onOpen runs each
  // time it opens (what happened while it was closed).
  const listeners = [];
  const openers = [];
  function follow(onEvent, onOpen) {
    listeners.push(onEvent);
    if (onOpen) openers.push(onOpen);
  }
  async function stream() {
    let last = null;
    for (;;) {
      if (!paired()) {
        // Not paired yet: app.js pairs, then the stream opens.
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      try {
        const h = { Authorization: "Bearer " + localStorage.getItem("camd-token"), Accept: "text/event-stream" };
        if (last) h["Last-Event-ID"] = last;
        // Low priority: the stream stays open for as long as the page
        // does, and must not hold up what the page loads.
        const res = await fetch("/api/v1/events/stream", { headers: h, priority: "low" });
        if (!res.ok) throw new Error(res.status); // 401: app.js asks to pair again
        await Promise.all(openers.map((f) => f().catch(() => {})));
        shell.events = "open";
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let end;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            let name = "message", data = "";
            for (const line of buf.slice(0, end).split("\n")) {
              if (line.startsWith("id:")) last = line.slice(3).trim();
              else if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            buf = buf.slice(end + 2);
            if (name === "message" && data) {
              const e = JSON.parse(data);
              for (const f of listeners) f(e);
            }
          }
        }
      } catch {
        // reconnect below
      }
      shell.events = "reconnecting";
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  setTimeout(stream); // after every script added its listeners

  // The service worker keeps the app shell for when the camera cannot be
  // reached; it never keeps media or API answers (sw.js).
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker
      .register("/sw.js")
      .then(() => navigator.serviceWorker.ready)
      .then(() => (shell.sw = "ready"))
      .catch((e) => (shell.sw = "failed: " + e.message));
  }
})();
