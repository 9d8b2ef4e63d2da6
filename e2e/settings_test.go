package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCamctlSettings changes settings as the owner would from the phone,
// through camctl against a running camd.
func TestCamctlSettings(t *testing.T) {
	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(args ...string) (string, error) {
		return camctl(t, ctx, append([]string{"settings", args[0], "--store", d.store}, args[1:]...)...)
	}

	out, err := run("set", "mute=on", "fps=10", "bitrate=1.5M", "night_mode=night", "name=Front door")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"mute                 true", "fps                  10", "bitrate              1500000", "name                 Front door"} {
		if !strings.Contains(out, w) {
			t.Errorf("set printed\n%s\nwithout %q", out, w)
		}
	}
	waitLog(t, d, `msg="camd: settings changed" keys=name,mute,fps,bitrate,night_mode`)

	out, err = run("get", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("get --json: %v\n%s", err, out)
	}
	if s["mute"] != true || s["fps"] != 10.0 || s["night_mode"] != "night" || s["resolution"] != "1280x720" {
		t.Fatalf("get: %v", s)
	}

	// Refusals name the setting, the value and what is allowed.
	for _, c := range []struct{ arg, want string }{
		{"fps=500", "fps: 500 is not allowed (allowed: a whole number from 1 to 60)"},
		{"mute=maybe", `mute: "maybe" is not allowed (allowed: true or false)`},
		{"zoom=2", `zoom: "2" is not allowed (allowed: a known setting: name,`},
		{"resolution=big", `resolution: "big" is not allowed`},
	} {
		_, err := run("set", c.arg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("set %s: %v, want %q", c.arg, err, c.want)
		}
	}

	out, err = run("reset", "fps", "mute")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "fps                  30") || !strings.Contains(out, "mute                 false") {
		t.Fatalf("reset printed\n%s", out)
	}
	if out, err := run("get", "fps", "name"); err != nil || !strings.Contains(out, "name                 Front door") {
		t.Fatalf("get fps name: %v\n%s", err, out)
	}
}
