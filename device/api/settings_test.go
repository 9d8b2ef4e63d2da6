package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/fielderr"
)

// fakeSettings are settings in memory; change, if set, stores a patch.
type fakeSettings struct {
	s      settings.Settings
	change func(patch map[string]json.RawMessage) (settings.Settings, error)
	by     pairing.User // who asked for the last change
}

func (f *fakeSettings) Get() settings.Settings { return f.s }
func (f *fakeSettings) Change(patch map[string]json.RawMessage, by pairing.User) (settings.Settings, error) {
	f.by = by
	return f.change(patch)
}

func TestSettings(t *testing.T) {
	fake := &fakeSettings{s: settings.Defaults()}
	var patched map[string]json.RawMessage
	fake.change = func(patch map[string]json.RawMessage) (settings.Settings, error) {
		patched = patch
		switch {
		case patch["fps"] != nil:
			return fake.s, &fielderr.Error{Scope: "settings", Field: "fps", Value: "500", Allowed: "a whole number from 1 to 60", Kind: settings.ErrInvalid}
		case patch["name"] != nil:
			return fake.s, &fielderr.Error{Scope: "settings", Field: "name", Value: "not json", Allowed: "1 to 63 characters", Kind: settings.ErrInvalid}
		case patch["zoom"] != nil:
			return fake.s, errDisk
		}
		after := fake.s
		after.Mute = true
		return after, nil
	}
	routes := (&Settings{Store: fake, Logger: discard}).routes()

	var got settings.Settings
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/settings", token: "owner-token"}), 200, &got)
	if got != settings.Defaults() {
		t.Fatalf("GET: %+v", got)
	}
	answer(t, do(t, routes, request{method: "PATCH", path: "/api/v1/settings", token: "owner-token",
		header: map[string]string{"Content-Type": "application/merge-patch+json"}, body: `{"mute": true, "bitrate": null}`}), 200, &got)
	if !got.Mute || string(patched["mute"]) != "true" || string(patched["bitrate"]) != "null" || fake.by.ID != theOwner.ID {
		t.Fatalf("PATCH: %+v from %v by %+v", got, patched, fake.by)
	}

	for _, c := range []struct {
		body, ctype string
		code        int
		want        []string
	}{
		{`{"fps": 500}`, "application/json", 422, []string{`"field":"fps"`, `"value":500`, `"allowed":"a whole number from 1 to 60"`}},
		{`{"name": 1}`, "", 422, []string{`"field":"name"`, `"value":"not json"`}},
		{`{"zoom": 2}`, "application/json", 500, []string{"input/output error"}},
		{`[1,2]`, "application/json", 400, []string{"JSON object"}},
		{`null`, "application/json", 400, []string{"JSON object"}},
		{`{"mute": tru`, "application/json", 400, []string{"JSON object"}},
		{`mute=true`, "application/x-www-form-urlencoded", 415, []string{"application/json"}},
		// What encoding/json would read as the last key, or would stop
		// before, is refused whole.
		{`{"mute": false, "mute": true}`, "application/json", 400, []string{`key \"mute\" given twice`}},
		{`{"mute": true} {"mute": false}`, "application/json", 400, []string{"data after the object"}},
		{`{"mute": true}x`, "application/json", 400, []string{"JSON object"}},
		{`{"a": {"b": 1, "b": 2}}`, "application/json", 400, []string{"given twice"}},
		{`{"name": "` + strings.Repeat("x", 70<<10) + `"}`, "application/json", 413, []string{"64 KiB"}},
	} {
		w := do(t, routes, request{method: "PATCH", path: "/api/v1/settings", token: "owner-token", body: c.body,
			header: map[string]string{"Content-Type": c.ctype}})
		if w.Code != c.code {
			t.Errorf("%.40s: %d %s, want %d", c.body, w.Code, w.Body, c.code)
		}
		for _, s := range c.want {
			if !strings.Contains(w.Body.String(), s) {
				t.Errorf("%.40s: answer %s lacks %s", c.body, w.Body, s)
			}
		}
	}
}

// FuzzStrictObject: what strictObject accepts is one valid JSON object
// that encoding/json reads with every key once.
func FuzzStrictObject(f *testing.F) {
	for _, s := range []string{`{"mute": true}`, `{"a": {"b": [1, {"c": null}]}}`, `{"a": 1, "a": 2}`, `{} {}`, `[]`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if strictObject(b) != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil || m == nil {
			t.Fatalf("accepted %q, which is not an object: %v", b, err)
		}
		// Every key once: re-encoding the map loses nothing.
		var keys int
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.Token()
		for dec.More() {
			dec.Token()
			var v json.RawMessage
			dec.Decode(&v)
			keys++
		}
		if keys != len(m) {
			t.Fatalf("accepted %q with %d keys at the top, %d distinct", b, keys, len(m))
		}
	})
}
