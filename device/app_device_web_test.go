package device

import (
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/camd-project/camd/device/crash"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage/card/cardtest"
	"github.com/camd-project/camd/storage/snapshots"
	"github.com/camd-project/camd/update/updatetest"
)

// The owner's app (device/web, docs/app.md): the snapshots gallery,
// stream keys, the device screen, pairing from a link and the
// notifications prompt, in headless Chromium at a phone's size.

// tap clicks the element the CSS selector finds.
func tap(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if !eval[bool](t, ctx, `(() => { const el = document.querySelector(`+jsString(sel)+`); if (!el) return false; el.click(); return true })()`) {
		t.Fatalf("nothing to click at %s", sel)
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// textOf is the text of the element the CSS selector finds.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return eval[string](t, ctx, `(document.querySelector(`+jsString(sel)+`) || {}).textContent || ""`)
}

// reopen loads the page again at screen, with script run before the
// page's own in every document from now on (stubs of browser APIs).
func reopen(t *testing.T, ctx context.Context, d *Daemon, screen, script string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if script != "" {
			if _, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script}); err != nil {
				return chromedp.Void{}, err
			}
		}
		if _, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: "https://" + d.Addr().String() + "/health"}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: "https://" + d.Addr().String() + "/" + screen})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "the app again", `location.pathname === "/" && document.readyState !== "loading" && window.camdShell && window.camdDevice`)
}

// saveSnapshot saves a snapshot through the API.
func saveSnapshot(t *testing.T, d *Daemon, token string) snapshots.Snapshot {
	t.Helper()
	return callFor[snapshots.Snapshot](t, d, "POST", "/api/v1/snapshots", token, nil, http.StatusCreated)
}

// TestAppSnapshots: the gallery lists the saved snapshots newest first
// with their thumbnails, opens one at its own size, downloads its JPEG
// byte for byte, and deletes it on a second tap (gone from camd); a
// viewer sees the gallery with no Delete, and a device screen without
// the owner's parts and without an error.
func TestAppSnapshots(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	older := saveSnapshot(t, d, ownerToken)
	newer := saveSnapshot(t, d, viewerToken)
	_, jpg := call(t, d, "GET", "/api/v1/snapshots/"+newer.ID, ownerToken, nil)

	ctx := appPage(t, d, ownerToken, "#snapshots")
	waitPage(t, ctx, "the gallery", `camdSnapshots.loaded && camdSnapshots.ids.includes("`+older.ID+`") && camdSnapshots.ids.includes("`+newer.ID+`")`)
	ids := eval[[]string](t, ctx, `camdSnapshots.ids`)
	if slices.Index(ids, newer.ID) > slices.Index(ids, older.ID) {
		t.Errorf("the gallery is not newest first: %q", ids)
	}
	item := `#snapList li[data-id="` + newer.ID + `"]`
	waitPage(t, ctx, "a thumbnail", `document.querySelector('`+item+` canvas[data-loaded="1"]')`)

	// Open it: drawn at the JPEG's own size; an owner may delete.
	tap(t, ctx, item+" button")
	waitPage(t, ctx, "the snapshot open", `camdSnapshots.open === "`+newer.ID+`" && document.getElementById("snapBig").dataset.loaded === "1"`)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(jpg))
	if err != nil {
		t.Fatal(err)
	}
	if w := eval[int](t, ctx, `document.getElementById("snapBig").width`); w != cfg.Width {
		t.Errorf("the snapshot is drawn %d px wide, want the picture's %d", w, cfg.Width)
	}
	if eval[bool](t, ctx, `document.getElementById("snapDelete").hidden`) {
		t.Error("the owner sees no Delete")
	}

	// Download: the file the browser is handed is the JPEG camd keeps.
	// (The page's policy lets no script read a blob: URL back: the test
	// keeps the Blob the link is made of.)
	eval[bool](t, ctx, `(() => {
		const made = URL.createObjectURL;
		URL.createObjectURL = (b) => { window.downloadedBlob = b; return made(b) };
		HTMLAnchorElement.prototype.click = function () { window.downloaded = { href: this.href, name: this.download } };
		return true })()`)
	tap(t, ctx, "#snapDownload")
	got := eval[[]int](t, ctx, `downloaded.href.startsWith("blob:") && downloadedBlob.arrayBuffer().then((b) => Array.from(new Uint8Array(b)))`)
	if name := eval[string](t, ctx, `downloaded.name`); !strings.HasSuffix(name, ".jpg") || len(got) != len(jpg) || !slices.EqualFunc(got, []byte(jpg), func(a int, b byte) bool { return a == int(b) }) {
		t.Errorf("downloaded %q: %d bytes, want camd's %d", name, len(got), len(jpg))
	}

	// Delete: the first tap asks, the second deletes.
	tap(t, ctx, "#snapDelete")
	if code, _ := call(t, d, "GET", "/api/v1/snapshots/"+newer.ID, ownerToken, nil); code != http.StatusOK {
		t.Fatalf("one tap deleted the snapshot (%d)", code)
	}
	tap(t, ctx, "#snapDelete")
	waitPage(t, ctx, "the snapshot deleted", `!camdSnapshots.ids.includes("`+newer.ID+`") && !document.querySelector('`+item+`') && document.getElementById("snapView").hidden`)
	if code, _ := call(t, d, "GET", "/api/v1/snapshots/"+newer.ID, ownerToken, nil); code != http.StatusNotFound {
		t.Errorf("after delete camd answers %d for the snapshot", code)
	}
	if msg := textOf(t, ctx, "#snapStatus"); msg != "The snapshot was deleted." {
		t.Errorf("after delete the screen says %q", msg)
	}
	fits(t, ctx, "snapshots")

	// A viewer: the gallery, no Delete.
	vctx := appPage(t, d, viewerToken, "#snapshots")
	waitPage(t, vctx, "the viewer's gallery", `camdSnapshots.loaded && camdSnapshots.ids.includes("`+older.ID+`")`)
	tap(t, vctx, `#snapList li[data-id="`+older.ID+`"] button`)
	waitPage(t, vctx, "the snapshot open", `camdSnapshots.open === "`+older.ID+`" && document.getElementById("snapBig").dataset.loaded === "1"`)
	if !eval[bool](t, vctx, `document.getElementById("snapDelete").hidden`) {
		t.Error("a viewer sees Delete")
	}
	// And the device screen: no owner's parts, no error.
	eval[bool](t, vctx, `location.hash = "#device", true`)
	waitPage(t, vctx, "the viewer's device screen", `camdDevice.loaded`)
	if shown := eval[int](t, vctx, `[...document.querySelectorAll("#device .owner")].filter((el) => el.offsetParent !== null).length`); shown != 0 {
		t.Errorf("a viewer sees %d of the owner's parts of the device screen", shown)
	}
	if msg := eval[string](t, vctx, `[...document.querySelectorAll("#device .error")].map((p) => p.textContent).join(" | ")`); msg != "" {
		t.Errorf("a viewer's device screen says %q", msg)
	}
	fits(t, vctx, "device, viewer")
}

// TestAppStreamKeys: the users screen makes a stream key for a device and
// shows its secret once (it works: a snapshot for dashboards answers it),
// lists it without the secret, hides the secret on the next visit, and
// revokes it on a second tap: gone from camd, refused at once.
func TestAppStreamKeys(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	ctx := appPage(t, d, ownerToken, "#users")
	waitPage(t, ctx, "the keys", `window.camdKeys && document.querySelector("#keyList li")`)

	eval[bool](t, ctx, `document.getElementById("keyFor").value = "hall dashboard", true`)
	tap(t, ctx, "#keyAdd")
	waitPage(t, ctx, "the key shown", `camdKeys.shown && !document.getElementById("keyShown").hidden && camdKeys.keys.length === 1`)
	type shownKey struct{ ID, Token string }
	k := eval[shownKey](t, ctx, `camdKeys.shown`)
	if !strings.HasPrefix(k.Token, "camdk1."+k.ID+".") || textOf(t, ctx, "#keyToken") != k.Token || textOf(t, ctx, "#keySecret") == "" {
		t.Fatalf("key shown: %+v, token on screen %q", k, textOf(t, ctx, "#keyToken"))
	}
	if code, b := call(t, d, "GET", "/api/v1/snapshot.jpg", k.Token, nil); code != http.StatusOK {
		t.Errorf("the key shown: snapshot.jpg answers %d %.100s", code, b)
	}
	_, b := call(t, d, "GET", "/api/v1/keys", ownerToken, nil)
	var keys []pairing.Key
	if json.Unmarshal(b, &keys); len(keys) != 1 || keys[0].ID != k.ID || keys[0].For != "hall dashboard" {
		t.Fatalf("camd's keys: %s", b)
	}
	row := `#keyList li[data-id="` + k.ID + `"]`
	if got := textOf(t, ctx, row); !strings.Contains(got, "hall dashboard") || strings.Contains(got, k.Token[len("camdk1."+k.ID+"."):]) {
		t.Errorf("the key listed: %q", got)
	}

	// Shown once: gone when the screen is shown again.
	loads := eval[int](t, ctx, `camdKeys.loads`)
	eval[bool](t, ctx, `location.hash = "#live", true`)
	waitPage(t, ctx, "the live screen", `camdShell.screen === "live"`)
	eval[bool](t, ctx, `location.hash = "#users", true`)
	waitPage(t, ctx, "the users screen again", `camdShell.screen === "users" && camdKeys.loads > `+strconv.Itoa(loads)+` && document.querySelector('`+row+`')`)
	if eval[bool](t, ctx, `!document.getElementById("keyShown").hidden || document.getElementById("keyToken").textContent !== ""`) {
		t.Error("the key's secret is shown again")
	}

	// Revoke: the first tap asks, the second revokes.
	tap(t, ctx, row+" button")
	if _, b := call(t, d, "GET", "/api/v1/keys", ownerToken, nil); !bytes.Contains(b, []byte(k.ID)) {
		t.Fatal("one tap revoked the key")
	}
	tap(t, ctx, row+" button")
	waitPage(t, ctx, "the key revoked", `!document.querySelector('`+row+`') && camdKeys.keys.length === 0`)
	if msg := textOf(t, ctx, "#keysStatus"); !strings.Contains(msg, "was revoked") {
		t.Errorf("after revoke the screen says %q", msg)
	}
	if code, _ := call(t, d, "GET", "/api/v1/snapshot.jpg", k.Token, nil); code != http.StatusUnauthorized {
		t.Errorf("the revoked key: snapshot.jpg answers %d", code)
	}
	fits(t, ctx, "users with keys")
}

// TestAppDevice: the device screen shows the name, firmware and ID,
// renames the camera (a refused name is a sentence), the storage,
// updates, Wi-Fi (networks in range; a wrong password refused in words,
// the right one joins), the log, a crash report (send refused in words
// without a collector; delete on a second tap) and how a factory reset
// is done.
func TestAppDevice(t *testing.T) {
	d := running(t, func(c *Config) {
		// The previous run crashed: a report is kept for the owner.
		c.CrashReports = crash.Ask
		trace := `{"version":"0.0.1-crashed","started":"2026-01-02T03:04:05Z","pid":1}` + "\npanic: assignment to entry in nil map\n\ngoroutine 7 [running]:\n"
		if err := os.WriteFile(filepath.Join(c.Data, crash.TraceFile), []byte(trace), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	ownerToken := owner(t, d)
	ctx := appPage(t, d, ownerToken, "#device")
	waitPage(t, ctx, "the device screen", `camdDevice.loaded && camdDevice.owner`)

	if v := textOf(t, ctx, "#devVersion"); v != Version {
		t.Errorf("firmware %q, want %q", v, Version)
	}
	if id := textOf(t, ctx, "#devID"); id != d.Identity().ID {
		t.Errorf("device ID %q, want %q", id, d.Identity().ID)
	}
	if got, want := eval[string](t, ctx, `document.getElementById("devName").value`), settingsNow(t, d, ownerToken).Name; got != want {
		t.Errorf("name %q, want %q", got, want)
	}

	// Rename; a name camd refuses is a sentence, not JSON.
	eval[bool](t, ctx, `document.getElementById("devName").value = "Front door", true`)
	tap(t, ctx, "#devRename")
	waitPage(t, ctx, "renamed", `document.getElementById("devStatus").textContent === "Renamed."`)
	if s := settingsNow(t, d, ownerToken); s.Name != "Front door" {
		t.Errorf("after rename: %q", s.Name)
	}
	eval[bool](t, ctx, `document.getElementById("devName").value = "bad\u202ename", true`)
	tap(t, ctx, "#devRename")
	waitPage(t, ctx, "the refused name", `document.getElementById("devStatus").className === "error"`)
	if msg := textOf(t, ctx, "#devStatus"); !strings.Contains(msg, "is not allowed") || strings.Contains(msg, "{") {
		t.Errorf("a refused name says %q", msg)
	}

	// Storage, updates: what camd answers, in words.
	if got := textOf(t, ctx, "#devStorage"); !strings.Contains(got, "used by recordings") || !strings.Contains(got, "not on a removable card") {
		t.Errorf("storage: %q", got)
	}
	if !eval[bool](t, ctx, `document.getElementById("devCheck").hidden && document.getElementById("devFormat").hidden`) {
		t.Error("card actions shown without a card")
	}
	if got := textOf(t, ctx, "#devUpdate"); got == "" || strings.Contains(got, "{") {
		t.Errorf("updates: %q", got)
	}

	// Wi-Fi (the simulated radio): scan, a wrong password, the right one.
	tap(t, ctx, "#devScan")
	waitPage(t, ctx, "the networks", `camdDevice.nets.includes("camd-sim-home")`)
	tap(t, ctx, `#devNets li[data-ssid="camd-sim-home"] button`)
	eval[bool](t, ctx, `document.getElementById("devPass").value = "wrong-passphrase", true`)
	tap(t, ctx, "#devJoinGo")
	waitPage(t, ctx, "the refused join", `document.getElementById("devWifiStatus").className === "error"`)
	if msg := textOf(t, ctx, "#devWifiStatus"); !strings.HasPrefix(msg, "The password is wrong.") || msg != eval[string](t, ctx, `camdText.device.joinFailed.wrong_key`) {
		t.Errorf("a wrong password says %q, want camd's reason (wrong_key) in words", msg)
	}
	eval[bool](t, ctx, `document.getElementById("devPass").value = "camd-sim-passphrase", true`)
	tap(t, ctx, "#devJoinGo")
	waitPage(t, ctx, "joined", `document.getElementById("devWifiStatus").textContent === "Joined camd-sim-home." && camdDevice.wifi.state === "connected"`)
	if got := textOf(t, ctx, "#devWifi"); !strings.Contains(got, "Connected to camd-sim-home") {
		t.Errorf("Wi-Fi: %q", got)
	}

	// The log.
	eval[bool](t, ctx, `document.getElementById("devLogLevel").value = "info", true`)
	tap(t, ctx, "#devLogShow")
	waitPage(t, ctx, "the log", `camdDevice.log > 0 && !document.getElementById("devLog").hidden`)

	// The crash report: listed; Send refused in words (no collector);
	// Delete on the second tap.
	waitPage(t, ctx, "the crash report", `camdDevice.crashes.length === 1`)
	id := eval[string](t, ctx, `camdDevice.crashes[0].id`)
	row := `#devCrashes li[data-id="` + id + `"]`
	if got := textOf(t, ctx, row); !strings.Contains(got, "0.0.1-crashed") {
		t.Errorf("the crash listed: %q", got)
	}
	tap(t, ctx, row+" button:nth-of-type(2)")
	waitPage(t, ctx, "send refused", `document.getElementById("devCrashStatus").className === "error"`)
	if msg := textOf(t, ctx, "#devCrashStatus"); strings.Contains(msg, "{") || msg == "" {
		t.Errorf("send without a collector says %q", msg)
	}
	tap(t, ctx, row+" button:nth-of-type(3)")
	tap(t, ctx, row+" button:nth-of-type(3)")
	waitPage(t, ctx, "the crash deleted", `camdDevice.crashes.length === 0`)
	if reps, _ := d.crashes.List(); len(reps) != 0 {
		t.Errorf("after delete camd keeps %v", reps)
	}

	if got := textOf(t, ctx, "#device"); !strings.Contains(got, "hold its pair/reset button for 10 seconds") {
		t.Error("the factory reset is not explained")
	}
	fits(t, ctx, "device")
}

// pushStubs stand in for the browser's push service, which a headless
// browser without the Internet cannot reach: a subscription with a
// public endpoint and real P-256 keys, and a permission the test sets
// (pushPermission) whose asks are counted (pushAsked).
const pushStubs = `(() => {
	window.pushPermission = "default";
	window.pushAsked = 0;
	Object.defineProperty(Notification, "permission", { configurable: true, get: () => window.pushPermission });
	Notification.requestPermission = async () => {
		window.pushAsked++;
		window.pushPermission = window.pushGrant || "granted";
		return window.pushPermission;
	};
	let sub = null;
	const b64url = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
	PushManager.prototype.getSubscription = async () => sub;
	PushManager.prototype.subscribe = async (opts) => {
		const kp = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
		const p256dh = b64url(await crypto.subtle.exportKey("raw", kp.publicKey));
		const auth = b64url(crypto.getRandomValues(new Uint8Array(16)));
		window.pushServerKey = new Uint8Array(opts.applicationServerKey).length;
		sub = {
			endpoint: "https://push.example.com/camd-test/" + auth,
			toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: { p256dh, auth } }),
			getKey: () => null,
			unsubscribe: async () => { sub = null; return true; },
		};
		return sub;
	};
})();`

// TestAppPushPrompt: notifications are asked for only when the button is
// tapped, never on load; turned on, camd holds this phone's subscription
// (under the device's VAPID key) and the screen says on; turned off, camd
// holds none; blocked in the browser, the screen says so and offers no
// button.
func TestAppPushPrompt(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	ctx := appPage(t, d, ownerToken, "#live")
	reopen(t, ctx, d, "#device", pushStubs)
	waitPage(t, ctx, "the device screen", `camdShell.screen === "device" && camdDevice.loaded`)
	if asked := eval[int](t, ctx, `pushAsked`); asked != 0 || eval[string](t, ctx, `camdDevice.push`) != "off" {
		t.Fatalf("on load: asked %d times, state %s", asked, eval[string](t, ctx, `camdDevice.push`))
	}
	if got := textOf(t, ctx, "#pushToggle"); got != "Turn on notifications" {
		t.Errorf("the button says %q", got)
	}

	subs := func() []map[string]any {
		t.Helper()
		var s []map[string]any
		if code, b := call(t, d, "GET", "/api/v1/push/subscriptions", ownerToken, nil); code != http.StatusOK || json.Unmarshal(b, &s) != nil {
			t.Fatalf("subscriptions: %d %s", code, b)
		}
		return s
	}
	tap(t, ctx, "#pushToggle")
	waitPage(t, ctx, "notifications on", `camdDevice.push === "on"`)
	if asked := eval[int](t, ctx, `pushAsked`); asked != 1 {
		t.Errorf("asked %d times, want 1", asked)
	}
	if n := eval[int](t, ctx, `pushServerKey`); n != 65 {
		t.Errorf("applicationServerKey of %d bytes, want the VAPID key's 65", n)
	}
	if s := subs(); len(s) != 1 || !strings.HasPrefix(s[0]["endpoint"].(string), "https://push.example.com/camd-test/") {
		t.Fatalf("camd holds %v", s)
	}
	if got := textOf(t, ctx, "#pushState"); !strings.HasPrefix(got, "On") || textOf(t, ctx, "#pushToggle") != "Turn off notifications" {
		t.Errorf("on: %q, button %q", got, textOf(t, ctx, "#pushToggle"))
	}

	tap(t, ctx, "#pushToggle")
	waitPage(t, ctx, "notifications off", `camdDevice.push === "off"`)
	if s := subs(); len(s) != 0 {
		t.Errorf("turned off, camd holds %v", s)
	}

	// Refused at the browser's question: nothing subscribed; then blocked.
	eval[bool](t, ctx, `window.pushGrant = "denied", true`)
	tap(t, ctx, "#pushToggle")
	waitPage(t, ctx, "blocked", `camdDevice.push === "blocked" && document.getElementById("pushToggle").hidden`)
	if got := textOf(t, ctx, "#pushState"); !strings.Contains(got, "blocked") {
		t.Errorf("blocked: %q", got)
	}
	if s := subs(); len(s) != 0 {
		t.Errorf("refused, camd holds %v", s)
	}
}

// TestAppPairByLink: the link in the camera's QR code (the setup code in
// the fragment) opens the app's pairing screen, which shows the
// certificate fingerprint the code expects, pairs as owner, takes the
// code out of the address, and keeps the fingerprint for the device
// screen. A code pasted shows its fingerprint before Pair is tapped.
func TestAppPairByLink(t *testing.T) {
	d := running(t)
	code := d.SetupPayload()
	want := d.Identity().Fingerprint
	ctx := appPage(t, d, "", "#live")
	waitPage(t, ctx, "the pairing screen", `!document.getElementById("pair").hidden`)

	// Pasted: the fingerprint shows, nothing is sent yet.
	eval[bool](t, ctx, `(() => { const c = document.getElementById("code"); c.value = `+jsString(code)+`; c.dispatchEvent(new Event("input")); return true })()`)
	if got := eval[string](t, ctx, `document.getElementById("pairPin").hidden ? "" : document.getElementById("pairPinValue").textContent`); got != want {
		t.Errorf("pasted: the screen shows fingerprint %q, want %q", got, want)
	}
	if d.Paired() {
		t.Fatal("pasting paired")
	}

	// The link, opened as a phone's camera app opens it.
	link := "https://" + d.Addr().String() + "/#pair=" + code
	if _, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: "https://" + d.Addr().String() + "/health"}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: link})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "paired from the link", `window.camdPairing && localStorage.getItem("camd-token") && document.getElementById("pair").hidden`)
	if got := eval[string](t, ctx, `camdPairing.expected`); got != want {
		t.Errorf("the link's screen expected %q, want %q", got, want)
	}
	if got := eval[string](t, ctx, `location.href`); strings.Contains(got, "CAMD1") {
		t.Errorf("the code stays in the address: %s", got)
	}
	if !d.Paired() {
		t.Fatal("the link did not pair")
	}
	eval[bool](t, ctx, `location.hash = "#device", true`)
	waitPage(t, ctx, "the device screen", `camdDevice.loaded`)
	if got := textOf(t, ctx, "#devPin"); !strings.HasPrefix(got, want) {
		t.Errorf("the device screen's certificate: %q, want %q", got, want)
	}
}

// TestAppCardCheckAndFormat: with the recordings on a card, the device
// screen shows it (mounted, its file system and device); Check and Format
// each ask first (one tap does nothing), then run and say how they ended.
func TestAppCardCheckAndFormat(t *testing.T) {
	mnt := t.TempDir()
	dev := cardtest.Loop(t, 32<<20, "mkfs.ext4", "-F", "-q")
	cardtest.Mount(t, dev, mnt)
	d := running(t, func(c *Config) { c.Recording.Path = filepath.Join(mnt, "camd") })
	tok := owner(t, d)
	ctx := appPage(t, d, tok, "#device")
	waitPage(t, ctx, "the card", `camdDevice.loaded && camdDevice.card && camdDevice.card.present`)
	if got := textOf(t, ctx, "#devStorage"); !strings.Contains(got, "mounted, ext4 ("+dev+")") {
		t.Errorf("storage: %q", got)
	}

	tap(t, ctx, "#devCheck")
	if got := textOf(t, ctx, "#devCheck"); !strings.Contains(got, "Check it?") || textOf(t, ctx, "#devStorageStatus") != "" {
		t.Fatalf("one tap on Check: the button says %q, the status %q", got, textOf(t, ctx, "#devStorageStatus"))
	}
	tap(t, ctx, "#devCheck")
	waitPage(t, ctx, "checked", `/^Done: (clean|repaired)\.$/.test(document.getElementById("devStorageStatus").textContent)`)

	eval[bool](t, ctx, `document.getElementById("devStorageStatus").textContent = "", true`)
	tap(t, ctx, "#devFormat")
	if got := textOf(t, ctx, "#devFormat"); got != "Erase everything on "+dev+"?" {
		t.Fatalf("one tap on Format: the button says %q", got)
	}
	tap(t, ctx, "#devFormat")
	waitPage(t, ctx, "formatted", `!["", "Formatting the card…"].includes(document.getElementById("devStorageStatus").textContent)`)
	if got := textOf(t, ctx, "#devStorageStatus"); got != "Done: formatted." {
		t.Errorf("format: %q", got)
	}
	fits(t, ctx, "device with a card")
}

// TestAppUpdate: the device screen checks the signed feed when the owner
// taps Check now, shows the update offered (version, size, notes), and
// installs it only after a second tap on Install: the fake A/B slots
// boot the new version.
func TestAppUpdate(t *testing.T) {
	feed := updatetest.NewFeed(t)
	ab := updatetest.NewFakeAB(t, "1.0.0")
	img := updatetest.Image("1.1.0", 200_000)
	feed.Publish(updatetest.Manifest("1.1.0", 1, img), img)
	d := updating(t, feed, ab)
	tok := owner(t, d)
	ctx := appPage(t, d, tok, "#device")
	waitPage(t, ctx, "the device screen", `camdDevice.loaded && camdDevice.update`)
	if got := textOf(t, ctx, "#devUpdate"); !strings.Contains(got, "Checking for updates is off") {
		t.Errorf("while off: %q", got)
	}
	if code, b := patchSettings(t, d, tok, "application/json", `{"update_check": true}`); code != http.StatusOK {
		t.Fatalf("update_check: %d %v", code, b)
	}
	tap(t, ctx, "#devUpdCheck")
	waitPage(t, ctx, "the update offered", `camdDevice.update.offered === "1.1.0" && !document.getElementById("devUpdApply").hidden`)
	if got := textOf(t, ctx, "#devUpdate"); !strings.Contains(got, "Version 1.1.0 is offered (200.0 KB)") {
		t.Errorf("offered: %q", got)
	}
	tap(t, ctx, "#devUpdApply")
	if got := textOf(t, ctx, "#devUpdApply"); !strings.Contains(got, "Install 1.1.0? The camera restarts.") || ab.Reboots() != 0 {
		t.Fatalf("one tap on Install: the button says %q, %d reboots", got, ab.Reboots())
	}
	tap(t, ctx, "#devUpdApply")
	testenv.Eventually(t, "the reboot into 1.1.0", func() bool { return ab.Reboots() == 1 })
	if ab.Version() != "1.1.0" {
		t.Errorf("booted %s", ab.Version())
	}
	waitPage(t, ctx, "installing said", `document.getElementById("devUpdStatus").textContent.startsWith("Installing")`)
}
