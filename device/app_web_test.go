package device

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	gzqrcode "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/testenv"
)

// The owner's app (device/web, docs/app.md) in headless Chromium at a
// phone's size.

// appPage opens the app in a fresh Chromium, 360×740 CSS pixels (a small
// phone), paired with token ("" leaves it unpaired), on screen ("#live",
// "#events", …); it returns the tab's context (90 s).
func appPage(t *testing.T, d *Daemon, token, screen string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(phoneBrowser(t, toneWAV(t, 1)), 90*time.Second)
	t.Cleanup(cancel)
	url := "https://" + d.Addr().String() + "/"
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.EmulateViewport(360, 740),
		chromedp.Navigate(url + "health"), // the origin, to set its storage
		chromedp.Evaluate[chromedp.Void](`localStorage.setItem("camd-token", ` + strconv.Quote(token) + `)`),
		// Not chromedp.Navigate: the page's load event waits for the
		// live video's first frame, which a camera without a picture
		// never sends.
		func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: url + screen})
			return chromedp.Void{}, err
		},
	}
	if token == "" {
		steps[2] = chromedp.Evaluate[chromedp.Void](`localStorage.clear()`)
	}
	for i, a := range steps {
		if _, err := chromedp.Run(ctx, a); err != nil {
			t.Fatalf("opening the app, step %d: %v", i, err)
		}
	}
	waitPage(t, ctx, "the app", `document.readyState !== "loading" && window.camdShell && camdShell.screen === "`+strings.TrimPrefix(screen, "#")+`"`)
	return ctx
}

// eval runs JavaScript in the page and returns its value (a promise's,
// once it settles).
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// waitPage waits until the JavaScript condition holds in the page (it
// polls in the page, for as long as testenv.Eventually would wait).
func waitPage(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	js := `new Promise((resolve) => {
		const check = () => {
			let ok = false;
			try { ok = !!(` + cond + `); } catch {}
			if (ok) resolve(true); else setTimeout(check, 50);
		};
		check();
	})`
	wctx, cancel := testenv.Context(t, ctx)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise)); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({live: window.camd, events: window.camdEvents, shellEvents: window.camdShell.events, screen: window.camdShell.screen, error: document.getElementById("error").textContent, evList: document.getElementById("evList").innerText})`))
		t.Fatalf("waiting for %s (%s): %v; the page: %s", what, cond, err, state)
	}
}

// fits asserts that the page does not scroll sideways.
func fits(t *testing.T, ctx context.Context, screen string) {
	t.Helper()
	w := eval[[]int](t, ctx, `[document.scrollingElement.scrollWidth, innerWidth]`)
	if w[0] > w[1] {
		t.Errorf("%s: the page is %d px wide in a %d px window: it scrolls sideways", screen, w[0], w[1])
	}
}

// screenshot keeps a picture of the page in $CAMD_SCREENSHOTS, when set
// (a test artifact for people to look at).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CAMD_SCREENSHOTS")
	if dir == "" {
		return
	}
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
	}
}

// TestAppFitsPhone: every screen of the app, paired and not, fits a
// 360 px wide phone, and a 1280×800 desktop (screenshots of each in
// $CAMD_SCREENSHOTS when set); before pairing, the app says how to pair and an
// action says "pair this phone first", in words, not JSON.
func TestAppFitsPhone(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	viewer(t, d, ownerToken)
	ctx := appPage(t, d, ownerToken, "#live")
	ready := map[string]string{
		"live":     `camd.framesDecoded > 0`,
		"timeline": `camdRec.spans >= 0 && document.querySelector("#recStatus").textContent !== ""`,
		"events":   `camdShell.events === "open"`,
		"settings": `camdSettings.loaded`,
		"users":    `camdUsers.users.length === 2`,
	}
	ready["snapshots"], ready["device"] = `camdSnapshots.loaded`, `camdDevice.loaded` // app_device_web_test.go
	for _, size := range [][2]int64{{360, 740}, {1280, 800}} {
		if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(size[0], size[1])); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"live", "timeline", "events", "settings", "users", "snapshots", "device"} {
			eval[bool](t, ctx, `document.querySelector('#nav a[data-screen="`+s+`"]').click(), true`)
			waitPage(t, ctx, s, `!document.getElementById("`+s+`").hidden && `+ready[s])
			if cur := eval[string](t, ctx, `document.querySelector("#nav [aria-current=page]").dataset.screen`); cur != s {
				t.Errorf("the navigation marks %q, on %s", cur, s)
			}
			fits(t, ctx, fmt.Sprintf("%s at %d×%d", s, size[0], size[1]))
			screenshot(t, ctx, fmt.Sprintf("%s-%dx%d.png", s, size[0], size[1]))
		}
	}

	un := appPage(t, d, "", "#live")
	waitPage(t, un, "the pairing screen", `!document.getElementById("pair").hidden`)
	fits(t, un, "pairing")
	if shown := eval[bool](t, un, `document.getElementById("video").offsetParent !== null || document.getElementById("connect").offsetParent !== null`); shown {
		t.Error("before pairing, the live controls show")
	}
	if msg := eval[string](t, un, `document.getElementById("error").textContent`); !strings.Contains(msg, "Pair this phone first") {
		t.Errorf("before pairing, the live screen says %q", msg)
	}
	eval[bool](t, un, `location.hash = "#timeline", document.getElementById("snapButton").click(), true`)
	waitPage(t, un, "the snapshot's error", `!document.getElementById("recError").hidden`)
	if msg := eval[string](t, un, `document.getElementById("recError").textContent`); !strings.Contains(msg, "Pair this phone first") || strings.Contains(msg, "{") {
		t.Errorf("a snapshot before pairing says %q", msg)
	}
	for _, s := range []string{"events", "settings", "users", "snapshots", "device"} {
		eval[bool](t, un, `location.hash = "#`+s+`", true`)
		status := map[string]string{"events": "evStatus", "settings": "setStatus", "users": "usersStatus", "snapshots": "snapStatus", "device": "devStatus"}[s]
		waitPage(t, un, s+" before pairing", `document.getElementById("`+status+`").textContent.includes("Pair this phone first")`)
		fits(t, un, s+" before pairing")
	}
}

// TestAppInstallable: the web manifest parses, with no error, and names
// icons that are PNGs of their stated sizes; Chromium finds the app
// installable; the service worker controls the page and keeps the app
// shell and nothing else: an API answer read through it twice is fresh
// the second time, and the cache holds exactly the shell's files. With
// the camera gone (camd stopped), the app opens from the cache and says
// so in a sentence, and still nothing but the shell is cached.
func TestAppInstallable(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	ctx := appPage(t, d, ownerToken, "#live")

	pageTextFilled(t, ctx, "online")

	m, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (page.GetAppManifestResult, error) {
		return cdp.Call(ctx, tg, page.GetAppManifest, page.GetAppManifestParams{})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Errors {
		t.Errorf("manifest: %s (line %d)", e.Message, e.Line)
	}
	var manifest struct {
		Name, StartURL, Display string
		Icons                   []struct{ Src, Sizes, Type string }
	}
	if err := json.Unmarshal([]byte(m.Data), &manifest); err != nil || manifest.Name != "camd" || len(manifest.Icons) == 0 {
		t.Fatalf("manifest %q: %v", m.Data, err)
	}
	for _, ic := range manifest.Icons {
		code, b := call(t, d, "GET", ic.Src, "", nil)
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if code != http.StatusOK || err != nil || ic.Type != "image/png" || strconv.Itoa(cfg.Width)+"x"+strconv.Itoa(cfg.Height) != ic.Sizes {
			t.Errorf("icon %s (%s, %s): %d, %dx%d, %v", ic.Src, ic.Sizes, ic.Type, code, cfg.Width, cfg.Height, err)
		}
	}

	// The service worker: ready and in control of the page.
	waitPage(t, ctx, "the service worker", `camdShell.sw === "ready" && navigator.serviceWorker.controller`)
	inst, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (page.GetInstallabilityErrorsResult, error) {
		return cdp.Call(ctx, tg, page.GetInstallabilityErrors, cdp.Empty{})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range inst.InstallabilityErrors {
		t.Errorf("not installable: %s", e.ErrorID)
	}

	// An API answer read twice through the service worker: the second is
	// the new one, and the cache holds the shell only.
	me := `fetch("/api/v1/me", {headers: {Authorization: "Bearer " + localStorage.getItem("camd-token")}}).then(r => r.json()).then(j => j.user.name)`
	if name := eval[string](t, ctx, me); name != "owner" {
		t.Fatalf("me: %q", name)
	}
	_, b := call(t, d, "GET", "/api/v1/me", ownerToken, nil)
	var mine struct{ User struct{ ID string } }
	json.Unmarshal(b, &mine)
	if code, b := call(t, d, "PATCH", "/api/v1/users/"+mine.User.ID, ownerToken, map[string]string{"name": "renamed"}); code != http.StatusNoContent {
		t.Fatalf("rename: %d %s", code, b)
	}
	if name := eval[string](t, ctx, me); name != "renamed" {
		t.Errorf("the second answer: %q, want the new name", name)
	}
	shellOnly(t, ctx, "after an API answer")

	// The camera goes away, after live view played and a snapshot was
	// read through the service worker: the app opened again comes from
	// the cache and says in a sentence that the camera cannot be
	// reached; the cache still holds the shell and nothing else.
	waitPage(t, ctx, "live view", `camd.framesDecoded > 0`)
	eval[bool](t, ctx, `camdLive.snapshot().then(() => true)`)
	stopDaemon(d)
	if _, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		// Another address than the page's (a reload), so that Navigate
		// returns once the new page is there; "/?" is the shell's "/".
		_, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: "https://" + d.Addr().String() + "/?again#live"})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "the shell, offline", `window.camdShell && camdShell.screen === "live" && !document.getElementById("error").hidden`)
	said := eval[[]string](t, ctx, `[document.getElementById("error").textContent, camdShell.text.unreachable, document.body.innerText]`)
	if said[0] != said[1] || !strings.Contains(said[0], "cannot be reached") {
		t.Errorf("offline, the app says %q, want %q", said[0], said[1])
	}
	for _, raw := range []string{"Failed to fetch", "TypeError", "NetworkError", "{"} {
		if strings.Contains(said[2], raw) {
			t.Errorf("offline, the page shows %q: %q", raw, said[2])
		}
	}
	if !eval[bool](t, ctx, `!!navigator.serviceWorker.controller`) {
		t.Error("the page opened offline has no service worker")
	}
	pageTextFilled(t, ctx, "offline")
	shellOnly(t, ctx, "offline")
}

// pageTextFilled asserts that every text and attribute index.html names
// by key (text.js's page part) was filled in at start: none is empty or
// "undefined", and the page, hidden until then, is shown.
func pageTextFilled(t *testing.T, ctx context.Context, when string) {
	t.Helper()
	empty := eval[[]string](t, ctx, `[...document.querySelectorAll("[data-t], [data-t-aria], [data-t-placeholder], [data-t-title]")].flatMap((e) =>
		[["data-t", e.textContent], ["data-t-aria", e.getAttribute("aria-label")], ["data-t-placeholder", e.getAttribute("placeholder")], ["data-t-title", e.getAttribute("title")]]
			.filter(([a, v]) => e.hasAttribute(a) && (!v || v === "undefined"))
			.map(([a]) => a + "=" + e.getAttribute(a)))`)
	if eval[bool](t, ctx, `document.documentElement.classList.contains("filling")`) {
		t.Errorf("%s, the page is still hidden (html.filling)", when)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("[data-t]").length`); n < 100 {
		t.Errorf("%s, the page has %d elements with data-t", when, n)
	}
	if len(empty) > 0 {
		t.Errorf("%s, the page's texts not filled in: %q", when, empty)
	}
}

// shellOnly asserts that the page's Cache Storage holds the app shell
// (the page and api.WebFiles but the service worker) and nothing else:
// no API answer, no media.
func shellOnly(t *testing.T, ctx context.Context, when string) {
	t.Helper()
	cached := eval[[]string](t, ctx, `caches.keys().then(ks => Promise.all(ks.map(k => caches.open(k).then(c => c.keys())))).then(ls => ls.flat().map(r => new URL(r.url).pathname).sort())`)
	want := append([]string{"/"}, api.WebFiles...)
	want = slices.DeleteFunc(want, func(f string) bool { return f == "sw.js" })
	for i, f := range want[1:] {
		want[i+1] = "/" + f
	}
	slices.Sort(want)
	if !slices.Equal(cached, want) {
		t.Errorf("%s, the cache holds %q\nwant the shell %q", when, cached, want)
	}
}

// settingsNow reads the settings through the API.
func settingsNow(t *testing.T, d *Daemon, token string) settings.Settings {
	t.Helper()
	return callFor[settings.Settings](t, d, "GET", "/api/v1/settings", token, nil, http.StatusOK)
}

// TestAppSettings: the settings screen shows every setting camd answers,
// typed; a value camd refuses is explained next to its field and nothing
// is saved; a good value is saved with one PATCH.
func TestAppSettings(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	ctx := appPage(t, d, ownerToken, "#settings")
	waitPage(t, ctx, "the settings", `camdSettings.loaded`)

	_, b := call(t, d, "GET", "/api/v1/settings", ownerToken, nil)
	var all map[string]any
	json.Unmarshal(b, &all)
	for key, v := range all {
		if key == "whip_token_set" {
			continue
		}
		want := map[string]string{"bool": "checkbox", "float64": "number", "string": "text", "[]interface {}": "textarea"}[fmt.Sprintf("%T", v)]
		if key == "night_mode" || key == "recording_mode" || key == "crash_reports" {
			want = "select-one"
		}
		if got := eval[string](t, ctx, `(document.getElementById("set-`+key+`") || {}).type || "missing"`); got != want {
			t.Errorf("setting %s (%v): input %s, want %s", key, v, got, want)
		}
	}

	// A refused value: the sentence under its own input, nothing saved.
	eval[bool](t, ctx, `document.getElementById("set-motion_sensitivity").value = "500", document.getElementById("set-mirror").checked = true, document.getElementById("setSave").click(), true`)
	waitPage(t, ctx, "the field's error", `camdSettings.fieldErrors.motion_sensitivity`)
	next := eval[string](t, ctx, `(() => { const p = document.getElementById("set-motion_sensitivity").nextElementSibling; return p.hidden ? "" : p.textContent })()`)
	if !strings.Contains(next, "500 is not allowed") || strings.Contains(next, "{") {
		t.Errorf("next to motion sensitivity: %q", next)
	}
	if s := settingsNow(t, d, ownerToken); s.Mirror {
		t.Errorf("a refused change saved the others: %+v", s)
	}

	// Fixed: saved, the error gone.
	eval[bool](t, ctx, `document.getElementById("set-motion_sensitivity").value = "42", document.getElementById("setSave").click(), true`)
	waitPage(t, ctx, "saved", `camdSettings.saved === 1`)
	if s := settingsNow(t, d, ownerToken); s.MotionSensitivity != 42 || !s.Mirror {
		t.Errorf("after save: %+v", s)
	}
	if shown := eval[bool](t, ctx, `!document.getElementById("set-motion_sensitivity-error").hidden`); shown {
		t.Error("the error stayed after the value was fixed")
	}
	fits(t, ctx, "settings")
}

// TestAppUsers: the users screen invites (a QR code on screen that reads
// back as the link, the link, when it expires), lists the invitation and
// cancels one, renames a user and revokes one: the user is gone from the
// screen and from camd.
func TestAppUsers(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	viewer(t, d, ownerToken)
	ctx := appPage(t, d, ownerToken, "#users")
	waitPage(t, ctx, "the users", `camdUsers.users.length === 2`)

	eval[bool](t, ctx, `document.getElementById("invite").click(), true`)
	waitPage(t, ctx, "the invitation", `camdUsers.invite && !document.getElementById("invShown").hidden`)
	type shownInvite struct {
		ID, Link, Expires string
		QR                int
	}
	inv := eval[shownInvite](t, ctx, `camdUsers.invite`)
	if !strings.Contains(inv.Link, "/#pair=CAMD1:") || inv.Expires == "" || inv.QR < 21 {
		t.Fatalf("invitation shown: %+v", inv)
	}
	if got := eval[string](t, ctx, `document.getElementById("invLink").href`); got != inv.Link {
		t.Errorf("the link on screen: %q, want %q", got, inv.Link)
	}
	if got := eval[string](t, ctx, `document.getElementById("invExpires").textContent`); !strings.Contains(got, "until") {
		t.Errorf("the expiry on screen: %q", got)
	}
	// The canvas holds the QR code of the link.
	rows := eval[[]string](t, ctx, `(() => { const c = document.getElementById("invQR"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data, rows = [];
		for (let y = 0; y < c.height; y++) { let r = ""; for (let x = 0; x < c.width; x++) r += d[4 * (y * c.width + x)] < 128 ? "1" : "0"; rows.push(r); } return rows; })()`)
	if got := readQR(t, rows); got != inv.Link {
		t.Errorf("the QR code on screen reads %q, want the link %q", got, inv.Link)
	}
	waitPage(t, ctx, "the invitation listed", `document.querySelector('#invList li[data-id="`+inv.ID+`"]')`)
	if got := eval[string](t, ctx, `document.querySelector('#invList li[data-id="`+inv.ID+`"]').textContent`); !strings.Contains(got, "viewer invitation by owner") {
		t.Errorf("the invitation listed: %q", got)
	}

	// Cancel it: gone from the screen and from camd.
	eval[bool](t, ctx, `document.querySelector('#invList li[data-id="`+inv.ID+`"] button').click(), true`)
	waitPage(t, ctx, "the invitation cancelled", `!document.querySelector('#invList li[data-id="`+inv.ID+`"]')`)
	if _, b := call(t, d, "GET", "/api/v1/users/invitations", ownerToken, nil); bytes.Contains(b, []byte(inv.ID)) {
		t.Errorf("the cancelled invitation is still listed: %s", b)
	}

	// Rename the viewer, then revoke it (a second tap confirms).
	var users []pairing.User
	_, b := call(t, d, "GET", "/api/v1/users", ownerToken, nil)
	json.Unmarshal(b, &users)
	i := slices.IndexFunc(users, func(u pairing.User) bool { return u.Role == pairing.Viewer })
	row := `document.querySelector('#userList li[data-id="` + users[i].ID + `"]')`
	eval[bool](t, ctx, `(() => { const li = `+row+`; li.querySelector("input").value = "Ana's phone"; li.querySelectorAll("button")[0].click(); return true })()`)
	waitPage(t, ctx, "the rename", `camdUsers.users.some((u) => u.name === "Ana's phone") && document.getElementById("usersStatus").textContent === "Renamed."`)
	_, b = call(t, d, "GET", "/api/v1/users", ownerToken, nil)
	if !bytes.Contains(b, []byte("Ana's phone")) {
		t.Errorf("after rename: %s", b)
	}
	eval[bool](t, ctx, `(() => { const b = `+row+`.querySelectorAll("button")[1]; b.click(); b.click(); return true })()`)
	waitPage(t, ctx, "the revoke", `!`+row+` && camdUsers.users.length === 1`)
	_, b = call(t, d, "GET", "/api/v1/users", ownerToken, nil)
	if bytes.Contains(b, []byte(users[i].ID)) {
		t.Errorf("the revoked user is still listed: %s", b)
	}
	fits(t, ctx, "users")
}

// readQR decodes a QR code drawn as rows of "1" (dark) and "0": 4
// pixels a module, a quiet zone of 4 modules ("" when it cannot).
func readQR(t *testing.T, rows []string) string {
	t.Helper()
	const scale, quiet = 4, 4
	n := (len(rows) + 2*quiet) * scale
	img := image.NewYCbCr(image.Rect(0, 0, n, n), image.YCbCrSubsampleRatio420)
	for i := range img.Y {
		img.Y[i] = 255
	}
	for y, row := range rows {
		for x, m := range row {
			if m != '1' {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					img.Y[((y+quiet)*scale+dy)*img.YStride+(x+quiet)*scale+dx] = 0
				}
			}
		}
	}
	// The code is drawn exactly, so it is decoded as a pure barcode:
	// gozxing's finder search misreads about 1 such code in 130 (a
	// camera's picture, network.DecodeQR's job, needs the search).
	src, err := gozxing.NewPlanarYUVLuminanceSource(img.Y, img.YStride, n, 0, 0, n, n, false)
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(src))
	if err != nil {
		t.Fatal(err)
	}
	res, err := gzqrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		return ""
	}
	return res.GetText()
}

// TestAppEvents: the events screen shows a motion trigger without a reload
// (from the event stream), counts the events not seen on the
// navigation's badge while another screen is shown, and filters by type.
func TestAppEvents(t *testing.T) {
	// No picture (passthrough without a writer): the motion is the API's
	// alone, with its end a second after.
	d := running(t, func(c *Config) { c.Recording.PostRoll = time.Second })
	ownerToken := owner(t, d)
	ctx := appPage(t, d, ownerToken, "#events")
	waitPage(t, ctx, "the event stream", `camdShell.events === "open" && camdEvents.shown > 0`) // user.paired, at least

	if code, b := call(t, d, "POST", "/api/v1/motion", ownerToken, api.MotionTrigger{Seconds: 1}); code/100 != 2 {
		t.Fatalf("motion: %d %s", code, b)
	}
	waitPage(t, ctx, "the motion on the list, live", `camdEvents.live > 0 && document.querySelector('#evList li[data-type="motion"]')`)
	// Its end too, before the screens change: it comes a second later, or
	// well after on a loaded machine, and would be counted as unread below.
	waitPage(t, ctx, "the motion's end on the list", `document.querySelector('#evList li[data-type="motion.end"]')`)
	if n := eval[int](t, ctx, `camdEvents.unread`); n != 0 {
		t.Errorf("%d unread with the list on screen", n)
	}

	// heard changes a setting (settings.changed) and waits for the page
	// to hear of it.
	n := 0
	heard := func() {
		t.Helper()
		live := eval[int](t, ctx, `camdEvents.live`)
		n++
		if code, b := call(t, d, "PATCH", "/api/v1/settings", ownerToken, map[string]string{"name": "cam " + strconv.Itoa(n)}); code != http.StatusOK {
			t.Fatalf("settings: %d %s", code, b)
		}
		waitPage(t, ctx, "the settings change heard", `camdEvents.live > `+strconv.Itoa(live))
	}

	// On another screen: counted on the badge, until the list is shown.
	eval[bool](t, ctx, `location.hash = "#live", true`)
	waitPage(t, ctx, "the live screen", `camdShell.screen === "live"`)
	heard()
	if b := eval[string](t, ctx, `document.getElementById("unread").hidden ? "" : document.getElementById("unread").textContent`); b != "1" {
		t.Errorf("badge %q, want 1", b)
	}
	eval[bool](t, ctx, `location.hash = "#events", true`)
	waitPage(t, ctx, "the badge cleared", `document.getElementById("unread").hidden && camdEvents.unread === 0`)

	// The filter: motion only; a settings change does not join it.
	eval[bool](t, ctx, `(() => { const s = document.getElementById("evType"); s.value = "motion"; s.dispatchEvent(new Event("change")); return true })()`)
	waitPage(t, ctx, "the filtered list", `!document.querySelector('#evList li:not([data-type="motion"])')`)
	heard()
	if types := eval[[]string](t, ctx, `camdEvents.types`); slices.ContainsFunc(types, func(ty string) bool { return ty != "motion" }) || len(types) == 0 {
		t.Errorf("with the motion filter the list shows %q", types)
	}
	fits(t, ctx, "events")
}

// TestAppEventThumbnail: an event with a snapshot (the synthetic
// picture's motion) shows it small in the list.
func TestAppEventThumbnail(t *testing.T) {
	d := running(t, syntheticSource)
	ctx := appPage(t, d, owner(t, d), "#events")
	waitPage(t, ctx, "a thumbnail", `document.querySelector('#evList li[data-type="motion"] canvas[data-loaded="1"]')`)
	if w := eval[int](t, ctx, `document.querySelector('#evList canvas[data-loaded="1"]').width`); w != 192 {
		t.Errorf("thumbnail %d px wide, want 192", w)
	}
}
