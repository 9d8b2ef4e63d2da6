// camd's service worker: it keeps the app shell (the page, its scripts,
// style, manifest and icons) so that the app opens when the camera cannot
// be reached, and nothing else. API answers, live video, recordings and
// snapshots never go near the cache: the fetch handler leaves every
// request but the shell's to the network, untouched.
"use strict";

importScripts("/text.js"); // self.camdText: the notification's fallback sentence

const cacheName = "camd-shell-4";
const shellFiles = [
  "/",
  "/text.js",
  "/app.css",
  "/shell.js",
  "/app.js",
  "/recordings.js",
  "/live.js",
  "/call.js",
  "/events.js",
  "/settings.js",
  "/users.js",
  "/keys.js",
  "/snapshots.js",
  "/device.js",
  "/pairing.js",
  "/manifest.json",
  "/icon-192.png",
  "/icon-512.png",
];

self.addEventListener("install", (e) => {
  e.waitUntil(
    caches
      .open(cacheName)
      .then((c) => c.addAll(shellFiles))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (e) => {
  e.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== cacheName).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// The shell comes from the network when it can (a firmware update brings
// a new page), from the cache when it cannot.
self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== self.location.origin || !shellFiles.includes(url.pathname)) {
    return; // the network's, never the cache's
  }
  e.respondWith(
    fetch(e.request)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          e.waitUntil(caches.open(cacheName).then((c) => c.put(url.pathname, copy)));
        }
        return res;
      })
      .catch(() => caches.match(url.pathname).then((hit) => hit || Response.error())),
  );
});

// A push (docs/push.md) shows its event; a tap opens the events screen.
// The message is the event's sentence: the rest is read from the API.
self.addEventListener("push", (e) => {
  let m = {};
  try {
    m = e.data ? e.data.json() : {};
  } catch {}
  e.waitUntil(self.registration.showNotification(m.camera || "camd", { body: m.message || self.camdText.sw.somethingHappened, tag: m.type, data: { id: m.id } }));
});

self.addEventListener("notificationclick", (e) => {
  e.notification.close();
  e.waitUntil(self.clients.openWindow("/#events"));
});
