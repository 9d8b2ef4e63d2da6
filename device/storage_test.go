package device

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/card/cardtest"
	"github.com/camd-project/camd/storage/eventlog"
)

// status reads GET /api/v1/recordings/status.
func status(t *testing.T, d *Daemon, token string) api.RecordingStatus {
	t.Helper()
	code, b := call(t, d, "GET", "/api/v1/recordings/status", token, nil)
	var st api.RecordingStatus
	if code != http.StatusOK || json.Unmarshal(b, &st) != nil {
		t.Fatalf("status: %d %s", code, b)
	}
	return st
}

// TestNoCardWritesNothingToFlash: recording.path outside the data
// directory is a card; with none mounted there, camd says so and makes
// nothing there, and checking a card it never saw is refused.
func TestNoCardWritesNothingToFlash(t *testing.T) {
	mnt := t.TempDir()
	d := running(t, func(c *Config) { c.Recording.Path = filepath.Join(mnt, "sd", "camd") })
	tok := owner(t, d)
	st := status(t, d, tok)
	if st.Paused != "no card" || st.Card == nil || st.Card.Mounted || st.Card.Present {
		t.Fatalf("status: %+v %+v", st.Stats, st.Card)
	}
	if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
		t.Fatalf("camd wrote to the device's own storage: %v", entries)
	}
	if code, b := call(t, d, "POST", "/api/v1/storage/check", tok, struct{}{}); code != http.StatusConflict {
		t.Fatalf("check without a card: %d %s", code, b)
	}
}

// TestCardCheckOverHTTPS: the owner checks a card the kernel made
// read-only after an error; camd lets go of it, e2fsck repairs it, and
// the card is mounted again and recorded on, with an event for each
// step.
func TestCardCheckOverHTTPS(t *testing.T) {
	mnt := t.TempDir()
	dev := cardtest.Loop(t, 32<<20, "mkfs.ext4", "-F", "-q")
	cardtest.Mount(t, dev, mnt, "-o", "errors=remount-ro")
	d := running(t, func(c *Config) { c.Recording.Path = filepath.Join(mnt, "camd") })
	tok := owner(t, d)
	if st := status(t, d, tok); st.Card == nil || st.Card.Device != dev || st.Card.FSType != "ext4" || !st.Card.Mounted || st.Paused != "" {
		t.Fatalf("status: %+v %+v", st.Stats, st.Card)
	}
	cardtest.FailFS(t, dev)
	testenv.Eventually(t, "recording paused: storage read-only", func() bool { return status(t, d, tok).Paused == "storage read-only" })
	code, b := call(t, d, "POST", "/api/v1/storage/check", tok, struct{}{})
	var res card.Result
	// e2fsck replays the journal and clears the error: "clean" or
	// "repaired", as it finds the file system.
	if code != http.StatusOK || json.Unmarshal(b, &res) != nil || (res.Outcome != "repaired" && res.Outcome != "clean") || !res.Mounted || !res.Unmounted {
		t.Fatalf("check: %d %s", code, b)
	}
	testenv.Eventually(t, "recording resumed", func() bool { return status(t, d, tok).Paused == "" })
	var evs []eventlog.Event
	_, b = call(t, d, "GET", "/api/v1/events?kind="+eventCardChecked, tok, nil)
	if json.Unmarshal(b, &evs) != nil || len(evs) != 1 || evs[0].Data["outcome"] != res.Outcome || evs[0].Data["device"] != dev {
		t.Fatalf("events: %s", b)
	}
}
