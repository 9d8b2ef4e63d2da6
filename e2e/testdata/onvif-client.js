// The npm ONVIF client (agsh/onvif) against camd, for e2e/onvif_test.go.
// Prints one JSON object a line:
//   node onvif-client.js info HOST PORT USER PASS
//     {"info": ...} the device, its profiles, stream and snapshot URIs,
//     {"subscribed": ...} once a PullPoint subscription exists, then
//     {"event": ...} for each notification (topic, source, data) until
//     killed. Errors: {"error": "..."} and exit 1.
//   node onvif-client.js probe
//     {"found": [{"xaddrs": [...], "hostname": ..., "port": ..., "path": ...}]}
//     after a WS-Discovery probe (3 s).
"use strict";
const onvif = require("onvif");

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const fail = (err) => {
	out({ error: String(err && err.message ? err.message : err) });
	process.exit(1);
};
const p = (fn) => new Promise((resolve, reject) => fn((err, data) => (err ? reject(err) : resolve(data))));

function items(si) {
	const o = {};
	for (const it of [].concat(si || [])) {
		if (it && it.$) o[it.$.Name] = it.$.Value;
	}
	return o;
}

async function info(host, port, username, password) {
	const cam = new onvif.Cam({ hostname: host, port: Number(port), username, password, autoconnect: false, timeout: 10000 });
	await p((cb) => cam.connect(cb));
	const device = await p((cb) => cam.getDeviceInformation(cb));
	const stream = await p((cb) => cam.getStreamUri({ protocol: "RTSP" }, cb));
	// A passthrough source without a snapshot command has no snapshot
	// URI: a fault, and null here.
	const snapshot = await p((cb) => cam.getSnapshotUri({}, cb)).catch(() => ({ uri: null }));
	const hostname = await p((cb) => cam.getHostname(cb));
	const scopes = await p((cb) => cam.getScopes(cb));
	out({
		info: {
			device,
			hostname,
			scopes,
			profiles: cam.profiles.map((pr) => ({
				token: pr.$.token,
				name: pr.name,
				encoding: pr.videoEncoderConfiguration && pr.videoEncoderConfiguration.encoding,
				resolution: pr.videoEncoderConfiguration && pr.videoEncoderConfiguration.resolution,
			})),
			stream: stream.uri,
			snapshot: snapshot.uri,
			capabilities: { events: !!(cam.capabilities && cam.capabilities.events) || !!(cam.uri && cam.uri.events) },
		},
	});
	const sub = await p((cb) => cam.createPullPointSubscription(cb));
	out({ subscribed: { address: sub.subscriptionReference.address.href } });
	for (;;) {
		const data = await p((cb) => cam.pullMessages({ messageLimit: 10 }, cb));
		for (const m of [].concat(data.notificationMessage || [])) {
			const msg = m.message.message;
			out({ event: { topic: m.topic._, time: msg.$.UtcTime, source: items(msg.source && msg.source.simpleItem), data: items(msg.data && msg.data.simpleItem) } });
		}
		await p((cb) => cam.renew({}, cb));
	}
}

function probe() {
	onvif.Discovery.probe({ timeout: 3000, resolve: false }, (err, found) => {
		if (err) return fail(err);
		out({
			found: found.map((f) => {
				const m = f.probeMatches.probeMatch;
				return { xaddrs: String(m.XAddrs).split(" "), scopes: String(m.scopes && (m.scopes._ || m.scopes)).split(" ") };
			}),
		});
		process.exit(0);
	});
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "info") info(...args).catch(fail);
else if (mode === "probe") probe();
else fail("usage: info HOST PORT USER PASS | probe");
