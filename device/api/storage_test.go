package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/recordings"
)

// fakeCard is a card whose check and format answer what the test says;
// it notes what was asked of it.
type fakeCard struct {
	device    string
	err       error
	checks    int
	formatted []string
}

func (f *fakeCard) Device() string { return f.device }

func (f *fakeCard) Check(context.Context) (card.Result, error) {
	f.checks++
	return card.Result{Device: f.device, Command: []string{"fsck.vfat", "-a", f.device}, ExitCode: 1, Outcome: "repaired",
		Output: "Free cluster summary wrong\n", Unmounted: true, Mounted: true}, f.err
}

func (f *fakeCard) Format(_ context.Context, device string) (card.Result, error) {
	f.formatted = append(f.formatted, device)
	return card.Result{Device: device, Command: []string{"mkfs.exfat", device}, Outcome: "formatted", FSType: "exfat", Mounted: true}, f.err
}

// TestStorageRoutes: only an owner checks or formats the card; a format
// needs the card's device confirmed.
func TestStorageRoutes(t *testing.T) {
	fake := &fakeCard{device: "/dev/mmcblk1p1"}
	routes := (&Storage{Card: fake}).routes()

	for _, path := range []string{"/api/v1/storage/check", "/api/v1/storage/format"} {
		body := `{"confirm": "format /dev/mmcblk1p1"}`
		if path == "/api/v1/storage/check" {
			body = `{}`
		}
		answer(t, do(t, routes, request{method: "POST", path: path, token: "viewer-token", body: body}), 403, nil)
		answer(t, do(t, routes, request{method: "POST", path: path, body: body}), 401, nil)
		answer(t, do(t, routes, request{method: "POST", path: path, token: "owner-token", body: body,
			header: map[string]string{"Content-Type": "text/plain"}}), 415, nil)
	}
	if fake.checks != 0 || len(fake.formatted) != 0 {
		t.Fatalf("ran for a viewer or a stranger: %+v", fake)
	}

	var res card.Result
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/storage/check", token: "owner-token", body: `{}`}), 200, &res)
	if fake.checks != 1 || res.Outcome != "repaired" || res.Output == "" || !res.Mounted {
		t.Fatalf("check: %+v", res)
	}

	for _, body := range []string{``, `{}`, `{"confirm": "format"}`, `{"confirm": "format /dev/sda1"}`, `{"confirm": "yes"}`} {
		w := do(t, routes, request{method: "POST", path: "/api/v1/storage/format", token: "owner-token", body: body,
			header: map[string]string{"Content-Type": "application/json"}})
		if w.Code != 400 || len(fake.formatted) != 0 {
			t.Fatalf("format with %q: %d %s, formatted %v", body, w.Code, w.Body, fake.formatted)
		}
		if msg := errorOf(t, w); msg != `storage: formatting erases everything on the card: confirm with {"confirm": "format /dev/mmcblk1p1"}` {
			t.Errorf("refusal: %s", msg)
		}
	}
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/storage/format", token: "owner-token",
		body: `{"confirm": "format /dev/mmcblk1p1"}`}), 200, &res)
	if len(fake.formatted) != 1 || fake.formatted[0] != "/dev/mmcblk1p1" || res.Outcome != "formatted" {
		t.Fatalf("format: %+v, formatted %v", res, fake.formatted)
	}

	// What cannot run answers 409, with what was tried.
	for _, err := range []error{recordings.ErrBusy, card.ErrUnmount, card.ErrUnknown, card.ErrNoCommand} {
		fake.err = fmt.Errorf("%w: because", err)
		w := do(t, routes, request{method: "POST", path: "/api/v1/storage/check", token: "owner-token", body: `{}`})
		answer(t, w, 409, &res)
		if errorOf(t, w) != fake.err.Error() || res.Device != fake.device {
			t.Errorf("%v: %s", err, w.Body)
		}
	}
	fake.err = nil

	// A card never seen cannot be confirmed; recordings not on a card
	// have none.
	fake.device = ""
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/storage/format", token: "owner-token", body: `{"confirm": "format "}`}), 409, nil)
	none := (&Storage{}).routes()
	answer(t, do(t, none, request{method: "POST", path: "/api/v1/storage/check", token: "owner-token", body: `{}`}), 409, nil)
}
