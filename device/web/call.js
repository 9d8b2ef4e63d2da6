// camd calls (docs/calls.md): the page rings when the doorbell does
// (call.ringing on the event stream), answers with the phone's microphone
// (audio sendrecv, video recvonly), declines and hangs up. It uses app.js's
// credential, live view (start, stop) and error line.
"use strict";

(() => {
  // window.camdCall exposes the call screen's state for people and for
  // tests. state: idle, ringing, answering, connected, answered elsewhere,
  // declined, ended (the call is over), failed.
  const text = camdText.call; // text.js
  const cs = (window.camdCall = {
    // events: the event stream (below): open, reconnecting, closed
    id: null,
    state: "idle",
    reason: null,
    framesDecoded: 0,
    audioReceived: 0, // the camera's microphone, packets received
    audioSent: 0, // the phone's microphone, packets sent
    audioCodec: null, // what the camera's audio came as
    audioEnergy: 0, // of what was heard (not silence when above 0)
    // audioCodecs, when set (["audio/PCMU"]), narrows the call's audio to
    // those codecs, as a phone without Opus would offer.
    audioCodecs: null,
    muted: false,
    ringing: false, // the ring sounds in the page
    error: null,
  });

  let mine = false; // this page answered the call on screen
  let pc = null;
  let answer = null; // the answer's Location: DELETE hangs up
  let mic = null;
  let ringer = null;
  let statsTimer = null;

  function set(state, reason = null) {
    cs.state = state;
    cs.reason = reason;
    const live = state === "ringing" || state === "answering" || state === "connected";
    $("call").hidden = state === "idle";
    const shown = text.states[state] || state;
    $("callState").textContent = reason ? text.stateWhy(shown, reason) : shown;
    $("answer").hidden = $("decline").hidden = state !== "ringing";
    $("hangup").hidden = $("mute").hidden = !(state === "answering" || state === "connected");
    $("callClose").hidden = live;
    ring(state === "ringing");
    cs.ringing = ringer !== null;
  }

  function callFail(msg) {
    cs.error = msg;
    fail(msg);
  }

  // ring plays a ring in the page while the call rings: 440/480 Hz, two
  // seconds on, four off (the camera has its own chime).
  function ring(on) {
    if (!on) {
      if (ringer) ringer.close().catch(() => {});
      ringer = null;
      return;
    }
    if (ringer) return;
    try {
      ringer = new AudioContext();
    } catch {
      return; // no sound in the page; the screen still shows the ring
    }
    const gain = ringer.createGain();
    gain.connect(ringer.destination);
    for (const hz of [440, 480]) {
      const o = ringer.createOscillator();
      o.frequency.value = hz;
      o.connect(gain);
      o.start();
    }
    for (let t = 0; t < 600; t += 6) {
      gain.gain.setValueAtTime(0.1, t);
      gain.gain.setValueAtTime(0, t + 2);
    }
  }

  function ringing(id) {
    if (cs.id === id && cs.state !== "idle") return;
    teardown();
    mine = false;
    Object.assign(cs, { id, framesDecoded: 0, audioReceived: 0, audioSent: 0, audioCodec: null, audioEnergy: 0, muted: false, error: null });
    set("ringing");
  }

  // onEvent follows a call's events: only the call on screen.
  function onEvent(e) {
    const d = e.data || {};
    if (e.type === "call.ringing") {
      ringing(d.call);
      return;
    }
    if (d.call !== cs.id) return;
    switch (e.type) {
      case "call.answered":
        if (!mine) {
          teardown();
          set("answered elsewhere");
        }
        break;
      case "call.declined":
      case "call.missed":
      case "call.ended": {
        if (!["ringing", "answering", "connected"].includes(cs.state)) break; // this page ended it already
        const inCall = pc !== null;
        teardown();
        set(e.type === "call.ended" ? "ended" : e.type.slice(5), d.reason || null);
        if (inCall) start().catch((err) => fail(String(err))); // back to live view
        break;
      }
    }
  }

  // The shell's event stream (shell.js) brings the calls' events; when
  // it opens, a call that rang before it did.
  camdShell.follow(onEvent, async () => {
    const now = await camdShell.json("GET", "/api/v1/calls");
    if (now.current && now.current.state === "ringing") ringing(now.current.id);
  });
  Object.defineProperty(cs, "events", { get: () => camdShell.events, enumerable: true });

  // teardown closes this page's side of a call.
  function teardown() {
    clearInterval(statsTimer);
    if (pc) pc.close();
    if (mic) mic.getTracks().forEach((t) => t.stop());
    pc = mic = answer = null;
  }

  // accept answers the call: the microphone sends to the camera's speaker,
  // the camera's picture and microphone play in the page's video.
  async function accept() {
    const id = cs.id;
    mine = true; // before the POST: call.answered may come before its 201
    set("answering");
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (err) {
      set("ringing");
      callFail(text.noMicrophone(err.message));
      return;
    }
    await stop(); // the call carries the picture; live view would be a second session
    pc = new RTCPeerConnection();
    const stream = new MediaStream();
    const video = $("video");
    video.srcObject = stream;
    video.muted = false;
    $("sound").textContent = camdText.app.mute;
    pc.addTransceiver("video", { direction: "recvonly" });
    const talk = pc.addTransceiver(mic.getAudioTracks()[0], { direction: "sendrecv", streams: [mic] });
    if (cs.audioCodecs && talk.setCodecPreferences) {
      const all = RTCRtpReceiver.getCapabilities("audio").codecs;
      talk.setCodecPreferences(all.filter((c) => cs.audioCodecs.includes(c.mimeType)));
    }
    pc.ontrack = (e) => stream.addTrack(e.track);
    pc.onconnectionstatechange = () => {
      if (!pc) return;
      if (pc.connectionState === "connected") set("connected");
      if (pc.connectionState === "failed") hangup(text.states.failed);
    };
    await pc.setLocalDescription(await pc.createOffer());
    // Loopback and LAN candidates come within moments; camd answers with
    // its own host candidate, so the offer waits for ours rather than
    // trickling.
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
      setTimeout(resolve, 1000);
    });
    const res = await fetch("/api/v1/calls/" + id + "/answer", {
      method: "POST",
      headers: auth({ "Content-Type": "application/sdp" }),
      body: pc.localDescription.sdp,
    });
    if (res.status !== 201) {
      const why = (await res.json().catch(() => ({}))).error || res.status;
      teardown();
      if (res.status === 409) set("answered elsewhere");
      else if (res.status === 410) set("ended", text.over);
      else {
        set("failed");
        callFail(text.refused(why));
      }
      return;
    }
    answer = new URL(res.headers.get("Location"), location.href).href;
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    statsTimer = setInterval(stats, 250);
  }

  async function stats() {
    if (!pc) return;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") cs.framesDecoded = s.framesDecoded || 0;
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        cs.audioReceived = s.packetsReceived || 0;
        cs.audioEnergy = s.totalAudioEnergy || 0;
        const codec = s.codecId && report.get(s.codecId);
        if (codec) cs.audioCodec = codec.mimeType;
      }
      if (s.type === "outbound-rtp" && s.kind === "audio") cs.audioSent = s.packetsSent || 0;
    });
  }

  // hangup ends the call from the page; camd's call.ended follows.
  async function hangup(why = text.hungUp) {
    const url = answer;
    set("ended", why);
    // DELETE first: closing the connection first would tell camd only
    // that it closed, not who hung up.
    if (url) await fetch(url, { method: "DELETE", headers: auth() }).catch(() => {});
    teardown();
    start().catch((err) => fail(String(err)));
  }

  async function decline() {
    const id = cs.id;
    set("declined", text.byYou);
    const res = await fetch("/api/v1/calls/" + id + "/decline", {
      method: "POST",
      headers: auth({ "Content-Type": "application/json" }),
      body: JSON.stringify({ reason: "declined" }),
    });
    if (!res.ok && res.status !== 409 && res.status !== 410) callFail(text.declineFailed(res.status));
  }

  $("answer").onclick = () => accept().catch((err) => callFail(String(err)));
  $("decline").onclick = () => decline().catch((err) => callFail(String(err)));
  $("hangup").onclick = () => hangup();
  $("mute").onclick = () => {
    cs.muted = !cs.muted;
    if (mic) mic.getAudioTracks().forEach((t) => (t.enabled = !cs.muted));
    $("mute").textContent = cs.muted ? text.unmuteMic : text.muteMic;
  };
  $("callClose").onclick = () => set("idle");
  window.addEventListener("pagehide", () => {
    if (answer) fetch(answer, { method: "DELETE", headers: auth(), keepalive: true }).catch(() => {});
  });
})();
