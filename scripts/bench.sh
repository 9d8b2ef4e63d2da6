#!/bin/sh
# make bench: runs the benchmarks and prints one table row per result.
# Live-view figures come from real processes (camd, headless Chromium,
# pion viewers) on loopback; see docs/benchmarks.md for what each means.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
run() { go test -run '^$' "$@" 2>&1 | tee -a "$raw" | grep -E '^(Benchmark|FAIL|panic)' >&2 || true; }

# ./device/ includes the events' latency to an SSE stream (EventToSSE)
# and to an MQTT subscriber through a mosquitto it starts (EventToMQTT).
echo "running unit benchmarks..." >&2
run -bench . -skip 'UnderSlowConnections|EventLoad|DoorbellToRingEvent|AnswerToFirstAudio|MouthToEar|SendFanOut' -benchmem ./media/ ./media/h264/ ./media/g711/ ./media/synthetic/... ./media/whep/ ./device/ ./device/api/ ./device/pairing/ ./device/onvif/
echo "running a stranger's flood of pair/finish (10,000 requests)..." >&2
run -bench GarbagePairFinish -benchtime 1x ./e2e/
echo "running credential check under 2,000 slow connections (20 s each: cap raised, default cap)..." >&2
run -bench CredentialCheckUnderSlowConnections -benchtime 20s ./device/
echo "running events (1,000 events/s for 10 s to 50 SSE streams, one stalled, beside a 720p recording and 10 hub consumers)..." >&2
run -bench EventLoad -benchtime 1x -timeout 10m ./device/
echo "running calls (doorbell press to ring event; answer to the phone's first audio out of the speaker; mouth to ear both ways: 20 samples each)..." >&2
run -bench 'DoorbellToRingEvent|AnswerToFirstAudio|MouthToEar' -benchtime 20x ./device/
echo "running one call's CPU and RSS (60 s answered, two-way audio and video, against 10 s idle)..." >&2
run -bench CallFootprint -benchtime 1x -timeout 10m ./e2e/
echo "running time to first frame (20 samples each)..." >&2
run -bench TimeToFirstFrame -benchtime 20x -timeout 30m ./e2e/
echo "running time to first frame through go2rtc's client and MediaMTX proxying camd (10 samples each)..." >&2
run -bench InteropTimeToFirstFrame -benchtime 10x -timeout 30m ./e2e/
echo "running the send path (one frame to 1, 10, 100 connected viewers that drop it: 300 frames each)..." >&2
run -bench SendFanOut -benchtime 300x -benchmem ./media/whep/
echo "running glass-to-glass latency in Chromium (5 viewers of 6 s each: synthetic, passthrough at 20 Mbps and 1 Gbps, passthrough asking for a keyframe; playout-delay 0 and off)..." >&2
run -bench GlassToGlass -benchtime 5x -timeout 30m ./e2e/
echo "running fan-out (1, 10, 50, 100 viewers, 10 s each)..." >&2
run -bench FanOut -benchtime 1x -timeout 30m ./e2e/
echo "running RTSP (time to first frame with ffprobe: 20 samples each; 8 RTSP + 8 WebRTC viewers: camd's CPU and RSS)..." >&2
run -bench RTSPTimeToFirstFrame -benchtime 20x -timeout 30m ./e2e/
run -bench RTSPAndWebRTCViewers -benchtime 1x -timeout 30m ./e2e/
echo "running WHIP to MediaMTX (camd's CPU and RSS with the publish and 0 or 50 SFU viewers)..." >&2
run -bench WHIPToSFU -benchtime 1x -timeout 30m ./e2e/
echo "running ONVIF (GetStreamUri round trips to a running camd, 500 samples)..." >&2
run -bench ONVIFGetStreamURI -benchtime 500x ./e2e/
echo "running discovery (first announcement, camctl discover: 10 samples; 30 s idle; needs root)..." >&2
run -bench 'Discovery(FirstAnnouncement|CamctlLists)' -benchtime 10x ./e2e/
run -bench DiscoveryIdlePackets -benchtime 1x ./e2e/
echo "running recording (storage micro-benchmarks; 2 Mbps for 30 s on and 30 s off; exports; 100 kill -9s)..." >&2
run -bench . -benchmem ./storage/... ./media/fmp4/ ./media/motion/ ./media/snapshot/
run -bench 'Recording2Mbps|TimelineHTTPS' -benchtime 1x -timeout 30m ./e2e/
run -bench ExportHTTPS -benchtime 5x -timeout 30m ./e2e/
run -bench Kill9 -benchtime 100x -timeout 60m ./e2e/
echo "running power cuts (24 per file system: ext4, FAT32, exFAT; a guest under emulation, about 8 min each;" >&2
echo "  then every crash state around a volume's creation, about 8 min each; details in \$CAMD_BENCH_OUT)..." >&2
export CAMD_BENCH_OUT="${CAMD_BENCH_OUT:-${TMPDIR:-/tmp}/camd-bench}"
run -bench 'PowerCut$' -benchtime 24x -timeout 90m ./e2e/
run -bench PowerCutSweep -benchtime 1x -timeout 90m ./e2e/
echo "running NVR (16, 32 and 64 RTSP test cameras of 2 Mbps recorded at once for 30 s each: losses, CPU and RSS per camera, disk per media byte, add and restart to recording)..." >&2
run -bench NVRCameras -benchtime 1x -timeout 20m ./e2e/
echo "running Web Push and webhooks (event to a push service and to a webhook receiver on loopback: 200 each; 1,000 deliveries queued, kill -9, restart: 3 runs)..." >&2
run -bench 'EventToPushService|EventToWebhook' -benchtime 200x ./notify/...
run -bench WebhooksKill9 -benchtime 3x -timeout 10m ./e2e/
echo "running updates (download + verify of a 30 MB image over loopback HTTPS: MB/s, extra RSS)..." >&2
run -bench DownloadVerify30MB -benchtime 5x ./update/
echo "running footprint (RSS and CPU, two viewers: 720p30 passthrough, synthetic 720p30 encode; 15 s each)..." >&2
run -bench Footprint -benchtime 1x -timeout 10m ./e2e/

echo
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	row = ""
	for (i = 3; i + 1 <= NF; i += 2) {
		if ($(i+1) == "ns/op" && $i == 0) continue
		row = row sprintf("  %s %s", $i, $(i+1))
	}
	printf "%-48s%s\n", name, row
}
/^(FAIL|panic)/ { failed = 1 }
END { if (failed) { print "\nsome benchmarks FAILED; see the output above"; exit 1 } }
' "$raw"
