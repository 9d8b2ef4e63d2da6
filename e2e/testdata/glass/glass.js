// Glass-to-glass latency of camd's live view, measured in the browser.
// BenchmarkGlassToGlass evaluates this on camd's origin: it watches the
// live stream over WHEP with abs-capture-time negotiated (camd stamps each
// video frame's capture wall clock), and records for every frame
// requestVideoFrameCallback shows when camd captured it (see poll below),
// receiveTime (its last packet's arrival) and expectedDisplayTime, all in
// ms after the POST.
// window.g2g holds the state; done once `seconds` have passed.
(token, playoutDelay, seconds) => {
  const r = (window.g2g = { done: false, error: "", posted: 0, frames: [], captures: {}, answer: "", offerExtensions: [] });
  const fail = (e) => { r.error = String(e); r.done = true; };
  (async () => {
    const pc = new RTCPeerConnection();
    const tr = pc.addTransceiver("video", { direction: "recvonly" });
    if (!tr.setHeaderExtensionsToNegotiate) throw new Error("no RTCRtpTransceiver.setHeaderExtensionsToNegotiate");
    tr.setHeaderExtensionsToNegotiate(tr.getHeaderExtensionsToNegotiate().map((e) => {
      if (e.uri.endsWith("/abs-capture-time")) e.direction = "recvonly";
      if (e.uri.endsWith("/playout-delay")) e.direction = playoutDelay ? "recvonly" : "stopped";
      return e;
    }));
    const v = document.createElement("video");
    Object.assign(v, { muted: true, autoplay: true, playsInline: true });
    document.body.appendChild(v);
    pc.ontrack = (e) => { v.srcObject = new MediaStream([e.track]); };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((ok) => {
      const check = () => pc.iceGatheringState === "complete" && ok();
      pc.onicegatheringstatechange = check;
      check();
    });
    r.offerExtensions = pc.localDescription.sdp.split("\r\n").filter((l) => l.startsWith("a=extmap:"));
    const t0 = performance.now();
    const res = await fetch("/api/v1/whep", {
      method: "POST",
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/sdp" },
      body: pc.localDescription.sdp,
    });
    if (res.status !== 201) throw new Error("POST: " + res.status + " " + (await res.text()));
    const session = res.headers.get("Location");
    r.answer = await res.text();
    await pc.setRemoteDescription({ type: "answer", sdp: r.answer });
    const rel = (t) => (t === undefined ? null : t - t0);
    // Chromium reports no captureTime in the callback's metadata for
    // WebRTC (it would need an RTT, which a receive-only peer does not
    // learn), but gives the abs-capture-time of the newest frame it
    // delivered in getSynchronizationSources(): captureTimestamp, in ms
    // of the NTP epoch (1900), by rtpTimestamp. A poll every 4 ms keeps
    // each frame's (30 fps; a replayed group of pictures comes faster and
    // some frames of it are missed).
    const rc = pc.getReceivers()[0];
    const ntpToUnixMs = 2208988800000;
    const poll = () => {
      for (const s of rc.getSynchronizationSources()) {
        if (s.captureTimestamp !== undefined && !(s.rtpTimestamp in r.captures)) {
          r.captures[s.rtpTimestamp] = rel(s.captureTimestamp - ntpToUnixMs - performance.timeOrigin);
        }
      }
    };
    const poller = setInterval(poll, 4);
    const onFrame = (now, m) => {
      poll();
      r.frames.push({ now: now - t0, receive: rel(m.receiveTime), display: rel(m.expectedDisplayTime), rtp: m.rtpTimestamp });
      if (!r.done) v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
    setTimeout(async () => {
      clearInterval(poller);
      for (const s of (await pc.getStats()).values()) {
        if (s.type === "inbound-rtp" && s.kind === "video") r.inbound = s;
      }
      r.done = true;
      pc.close();
      await fetch(session, { method: "DELETE", headers: { Authorization: "Bearer " + token } }).catch(() => {});
    }, seconds * 1000);
  })().catch(fail);
}
