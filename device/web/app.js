// camd live view: plays the camera through WHEP (RFC 9725).
"use strict";

const endpoint = "/api/v1/whep";
const $ = (id) => document.getElementById(id);

// window.camd exposes the viewer's state for people and for tests.
const camd = (window.camd = {
  state: "new",
  ttffMs: null,
  framesDecoded: 0,
  width: 0,
  height: 0,
  audioPackets: 0,
  audioSamples: 0,
  error: null,
});

let pc = null;
let session = null;
let statsTimer = null;

function show(state) {
  camd.state = state;
  const el = $("state");
  el.textContent = state;
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
    fetch(session, { method: "DELETE", keepalive: true }).catch(() => {});
    session = null;
  }
  if (pc) {
    pc.close();
    pc = null;
  }
}

async function start() {
  await stop();
  $("error").hidden = true;
  Object.assign(camd, { ttffMs: null, framesDecoded: 0, width: 0, height: 0, audioPackets: 0, audioSamples: 0, error: null });
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
      headers: { "Content-Type": "application/trickle-ice-sdpfrag" },
      body: frag,
    }).catch(() => {});
  };
  pc.onicecandidate = (e) => {
    if (!e.candidate || !e.candidate.candidate) return;
    if (session) trickle([e.candidate]);
    else pending.push(e.candidate);
  };

  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);

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
    res = await fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: pc.localDescription.sdp,
    });
  } catch (err) {
    show("failed");
    fail("camd is not reachable: " + err);
    return;
  }
  if (res.status !== 201) {
    show("failed");
    fail("camd refused: " + res.status + " " + (await res.text()));
    return;
  }
  session = new URL(res.headers.get("Location"), location.href).href;
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  trickle(pending.splice(0));

  let last = null;
  statsTimer = setInterval(async () => {
    if (!pc) return;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "video") {
        camd.framesDecoded = s.framesDecoded || 0;
        camd.width = s.frameWidth || 0;
        camd.height = s.frameHeight || 0;
        $("frames").textContent = camd.framesDecoded;
        $("resolution").textContent = camd.width ? camd.width + "×" + camd.height : "–";
        $("fps").textContent = s.framesPerSecond ? s.framesPerSecond.toFixed(0) + " fps" : "–";
        if (last) {
          const bps = (8 * (s.bytesReceived - last.bytes)) / ((s.timestamp - last.t) / 1000);
          $("bitrate").textContent = (bps / 1e6).toFixed(2) + " Mbit/s";
        }
        last = { bytes: s.bytesReceived, t: s.timestamp };
      } else if (s.kind === "audio") {
        camd.audioPackets = s.packetsReceived || 0;
        camd.audioSamples = s.totalSamplesReceived || 0;
        $("audio").textContent = camd.audioPackets;
      }
    });
  }, 250);
}

$("connect").onclick = () => start().catch((e) => fail(String(e)));
$("sound").onclick = () => {
  const v = $("video");
  v.muted = !v.muted;
  $("sound").textContent = v.muted ? "Unmute" : "Mute";
};
window.addEventListener("pagehide", stop);
start().catch((e) => fail(String(e)));
