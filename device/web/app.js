// camd live view: plays the camera through WHEP (RFC 9725).
"use strict";

const endpoint = "/api/v1/whep";
const $ = (id) => document.getElementById(id);
const appText = camdText.app; // text.js

// window.camd exposes the viewer's state for people and for tests.
const camd = (window.camd = {
  state: "new",
  watching: "live", // or the recording's range, played over WebRTC
  ttffMs: null,
  framesDecoded: 0,
  width: 0,
  height: 0,
  audioPackets: 0,
  audioSamples: 0,
  // The connection's quality (getStats): bits per second, frames per
  // second, the share of video packets lost, the round trip.
  bitrate: 0,
  fps: 0,
  lossPct: 0,
  rttMs: null,
  error: null,
});

let pc = null;
let session = null;
let statsTimer = null;

// The credential this browser got when it paired.
const tokenKey = "camd-token";
const token = () => localStorage.getItem(tokenKey);
const auth = (headers = {}) => Object.assign(headers, { Authorization: "Bearer " + token() });

// Pairing (docs/pairing.md): decode the CAMD1 code, prove knowledge of its
// secret with an HMAC over the camera's nonce, keep the credential.
function base32(s) {
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out = [];
  for (const ch of s) {
    const v = abc.indexOf(ch);
    if (v < 0) throw new Error(appText.notACode);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

function base32Encode(bytes) {
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0, out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += abc[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += abc[(value << (5 - bits)) & 31];
  return out;
}

function crc16(bytes) {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function parseCode(text) {
  const s = text.trim().toUpperCase();
  if (!s.startsWith("CAMD1:")) throw new Error(appText.notACode);
  const b = base32(s.slice(6));
  const body = b.slice(0, b.length - 2);
  if (crc16(body) !== ((b[b.length - 2] << 8) | b[b.length - 1])) throw new Error(appText.damaged);
  return {
    invite: (body[1] & 2) !== 0,
    deviceID: base32Encode(body.slice(2, 12)),
    fingerprint: body.slice(12, 44),
    secret: body.slice(44, 60),
  };
}

// fingerprintText is a certificate fingerprint as camd prints it (hex).
const fingerprintText = (bytes) => Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");

const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

async function post(path, body) {
  const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json.error || res.status + " " + res.statusText);
  return json;
}

async function pairWith(text, name) {
  const code = parseCode(text);
  let inviteID = "";
  if (code.invite) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", code.secret));
    inviteID = Array.from(digest.slice(0, 8), (x) => x.toString(16).padStart(2, "0")).join("");
  }
  const start = await post("/api/v1/pair/start", { invite_id: inviteID });
  if (start.device_id !== code.deviceID) throw new Error(appText.otherCamera);
  const key = await crypto.subtle.importKey("raw", code.secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const enc = new TextEncoder();
  const nonce = unb64(start.nonce);
  const msg = new Uint8Array([...enc.encode("camd-pair-v1\0" + code.deviceID + "\0"), ...nonce, ...enc.encode("\0" + name)]);
  const proof = new Uint8Array(await crypto.subtle.sign("HMAC", key, msg));
  const done = await post("/api/v1/pair/finish", { nonce: start.nonce, name, proof: b64(proof), invite_id: inviteID });
  localStorage.setItem(tokenKey, done.token);
  localStorage.setItem("camd-pin", fingerprintText(code.fingerprint)); // pairing.js
}

function askToPair(msg = camdShell.text.pairFirst) {
  show("not paired");
  document.body.classList.add("unpaired");
  $("pair").hidden = false;
  fail(msg);
}

// pairingNow: a pairing is under way; live view starts after it.
let pairingNow = false;

async function pairFromPage() {
  pairingNow = true;
  try {
    await pairWith($("code").value, $("who").value || appText.browser);
    $("pair").hidden = true;
    document.body.classList.remove("unpaired");
    $("error").hidden = true;
    listCameras().catch(() => {});
    await start();
  } catch (e) {
    fail(appText.pairFailed(e.message));
  } finally {
    pairingNow = false;
  }
}

function show(state) {
  camd.state = state;
  const el = $("state");
  el.textContent = appText.states[state] || state;
  el.className = "state " + state;
}

function fail(msg) {
  camd.error = msg;
  $("error").textContent = msg;
  $("error").hidden = false;
}

async function stop() {
  clearInterval(statsTimer);
  if (session) {
    fetch(session, { method: "DELETE", headers: auth(), keepalive: true }).catch(() => {});
    session = null;
  }
  if (pc) {
    pc.close();
    pc = null;
  }
}

// start watches a WHEP endpoint: the live stream, or a recording played
// back over WebRTC (/api/v1/recordings/whep?from&to, which camd ends a
// second after the recording does).
// generation counts the starts: a start that another one followed (the
// viewer switched cameras while it was connecting) gives up at its next
// step, leaving nothing behind.
let generation = 0;

// playing: a start was asked for since the viewer last left the Live
// screen (set at once, before start's first await).
let playing = false;

async function start(url = endpoint) {
  playing = true;
  const gen = ++generation;
  const stale = () => gen !== generation;
  await stop();
  if (stale()) return;
  // An NVR's camera (docs/nvr.md): /api/v1/cameras/{camera}/whep.
  const camera = (url.match(/^\/api\/v1\/cameras\/([^/?]+)\/whep$/) || [])[1];
  const range = url === endpoint || camera ? null : url.split("?")[1] || "";
  const from = range && Date.parse(new URLSearchParams(range).get("from"));
  camd.watching = camera ? "camera:" + decodeURIComponent(camera) : range === null ? "live" : range;
  $("watching").textContent = camera
    ? appText.liveOf(($("camera").selectedOptions[0] || {}).textContent)
    : range === null
      ? appText.live
      : from
        ? appText.recordingFrom(new Date(from).toLocaleTimeString())
        : appText.recording;
  if (!token()) {
    askToPair();
    return;
  }
  $("error").hidden = true;
  Object.assign(camd, { ttffMs: null, framesDecoded: 0, width: 0, height: 0, audioPackets: 0, audioSamples: 0, bitrate: 0, fps: 0, lossPct: 0, rttMs: null, error: null });
  $("ttff").textContent = "–";

  pc = new RTCPeerConnection();
  const video = $("video");
  const stream = new MediaStream();
  video.srcObject = stream;
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.ontrack = (e) => stream.addTrack(e.track);
  pc.onconnectionstatechange = () => show(pc.connectionState);

  // Candidates found before the session exists wait for its Location.
  const pending = [];
  const trickle = (cands) => {
    if (!session || cands.length === 0) return;
    const frag = cands.map((c) => "a=mid:" + c.sdpMid + "\r\na=" + c.candidate + "\r\n").join("");
    fetch(session, {
      method: "PATCH",
      headers: auth({ "Content-Type": "application/trickle-ice-sdpfrag" }),
      body: frag,
    }).catch(() => {});
  };
  pc.onicecandidate = (e) => {
    if (!e.candidate || !e.candidate.candidate) return;
    if (session) trickle([e.candidate]);
    else pending.push(e.candidate);
  };

  const offer = await pc.createOffer();
  if (stale()) return;
  await pc.setLocalDescription(offer);
  if (stale()) return;

  const t0 = performance.now();
  const first = () => {
    if (camd.ttffMs === null) {
      camd.ttffMs = performance.now() - t0;
      $("ttff").textContent = camd.ttffMs.toFixed(0) + " ms";
    }
  };
  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
    video.requestVideoFrameCallback(first);
  } else {
    video.addEventListener("loadeddata", first, { once: true });
  }

  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: auth({ "Content-Type": "application/sdp" }),
      body: pc.localDescription.sdp,
    });
  } catch (err) {
    if (stale()) return;
    show("failed");
    fail(camdShell.text.unreachable);
    return;
  }
  if (stale()) {
    // Another start took over: leave the session this one made.
    if (res.status === 201) {
      const loc = new URL(res.headers.get("Location"), location.href).href;
      fetch(loc, { method: "DELETE", headers: auth(), keepalive: true }).catch(() => {});
    }
    return;
  }
  if (res.status === 401) {
    localStorage.removeItem(tokenKey);
    pc.close();
    pc = null;
    askToPair(camdShell.text.unpaired);
    return;
  }
  if (res.status !== 201) {
    show("failed");
    fail((await res.json().catch(() => ({}))).error || camdShell.text.refused(res.status));
    return;
  }
  session = new URL(res.headers.get("Location"), location.href).href;
  const answer = await res.text();
  if (stale()) return;
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  trickle(pending.splice(0));

  let last = null;
  statsTimer = setInterval(async () => {
    if (!pc) return;
    const report = await pc.getStats();
    let rtt = null;
    report.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime !== undefined) {
        rtt = s.currentRoundTripTime;
      }
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "video") {
        camd.framesDecoded = s.framesDecoded || 0;
        camd.width = s.frameWidth || 0;
        camd.height = s.frameHeight || 0;
        camd.fps = s.framesPerSecond || 0;
        $("frames").textContent = camd.framesDecoded;
        $("resolution").textContent = camd.width ? camd.width + "×" + camd.height : "–";
        $("fps").textContent = s.framesPerSecond ? s.framesPerSecond.toFixed(0) + " fps" : "–";
        if (last && s.timestamp > last.t) {
          camd.bitrate = (8 * (s.bytesReceived - last.bytes)) / ((s.timestamp - last.t) / 1000);
          $("bitrate").textContent = (camd.bitrate / 1e6).toFixed(2) + " Mbit/s";
        }
        last = { bytes: s.bytesReceived, t: s.timestamp };
        const lost = Math.max(s.packetsLost || 0, 0), got = s.packetsReceived || 0;
        camd.lossPct = got + lost ? (100 * lost) / (got + lost) : 0;
        $("lost").textContent = lost + " (" + camd.lossPct.toFixed(1) + " %)";
      } else if (s.kind === "audio") {
        camd.audioPackets = s.packetsReceived || 0;
        camd.audioSamples = s.totalSamplesReceived || 0;
        $("audio").textContent = camd.audioPackets;
      }
    });
    if (rtt !== null) {
      camd.rttMs = rtt * 1000;
      $("rtt").textContent = camd.rttMs.toFixed(0) + " ms";
    }
    // The connection's quality, small, on the video.
    $("quality").textContent =
      (camd.bitrate / 1e6).toFixed(2) + " Mbit/s · " + camd.fps.toFixed(0) + " fps · " +
      camd.lossPct.toFixed(1) + " % lost" + (camd.rttMs === null ? "" : " · " + camd.rttMs.toFixed(0) + " ms");
  }, 250);
}

// The cameras an NVR records (GET /api/v1/cameras): a list to switch
// between them, shown when there are any.
async function listCameras() {
  if (!token()) return;
  const res = await fetch("/api/v1/cameras", { headers: auth() });
  if (!res.ok) return;
  const list = (await res.json()).filter((c) => c.state !== "removed");
  const pick = $("camera");
  pick.replaceChildren(pick.options[0]);
  for (const c of list) {
    const o = document.createElement("option");
    o.value = c.id;
    o.textContent = c.name + (c.state === "online" ? "" : " (" + c.state + ")");
    pick.append(o);
  }
  $("cameraPick").hidden = list.length === 0;
  camd.cameras = list.map((c) => c.id);
}
const watchPicked = () => {
  const id = $("camera").value;
  return start(id ? "/api/v1/cameras/" + encodeURIComponent(id) + "/whep" : endpoint);
};
$("camera").onchange = () => watchPicked().catch((e) => fail(String(e)));
$("connect").onclick = () => watchPicked().catch((e) => fail(String(e)));
window.camdWatch = (url) => start(url).catch((e) => fail(String(e)));
$("sound").onclick = () => {
  const v = $("video");
  v.muted = !v.muted;
  $("sound").textContent = v.muted ? appText.unmute : appText.mute;
};
$("who").value = appText.browser; // the name this phone pairs with, to change
$("pairButton").onclick = pairFromPage;
window.addEventListener("pagehide", stop);

// An invitation link carries the code after #pair=; take it once and
// drop it from the address bar and history. A link opened in a tab that
// already shows camd changes only the hash: pair then too.
function pairFromHash() {
  if (!location.hash.startsWith("#pair=")) {
    return false;
  }
  $("code").value = decodeURIComponent(location.hash.slice(6));
  history.replaceState(null, "", location.pathname);
  pairFromPage();
  return true;
}
window.addEventListener("hashchange", pairFromHash);
// Live view plays while the Live screen is shown, and stops when the
// viewer leaves it (a viewer slot and the camera's work are not spent on
// a screen nobody sees). The first screen comes with the page
// (shell.js), after an invitation link paired.
document.addEventListener("camd:screen", (e) => {
  if (e.detail === "live") {
    if (!playing && !pairingNow) start().catch((err) => fail(String(err)));
  } else if (playing && !(window.camdCall && window.camdCall.state === "connected")) {
    playing = false;
    generation++; // a start under way gives up
    stop();
    show("stopped");
  }
});
pairFromHash();
listCameras().catch(() => {});
