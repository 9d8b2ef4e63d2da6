package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTerminalWriterEscapesWhatATerminalWouldAct(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Front door\n", "Front door\n"},
		{"a\tb", "a\tb"},
		{"Küche 🚪 カメラ", "Küche 🚪 カメラ"},
		{"\x1b]0;pwned\x07", `\u001B]0;pwned\u0007`},       // window title (OSC)
		{"\x1b[2J\x1b[H", `\u001B[2J\u001B[H`},             // clear screen
		{"ok\rfake", `ok\u000Dfake`},                       // carriage return overwrites the line
		{"del\x7f", `del\u007F`},                           // DEL
		{"c1\u009b31m", `c1\u009B31m`},                     // C1 CSI, UTF-8 encoded
		{"evil\u202egnp.exe", `evil\u202Egnp.exe`},         // bidi override
		{"a\u2066b\u2069", `a\u2066b\u2069`},               // bidi isolates
		{"zero\u200bwidth\ufeff", `zero\u200Bwidth\uFEFF`}, // zero width, BOM
		{"line\u2028sep", `line\u2028sep`},
		{"bad\xffbyte", `bad\xffbyte`},
	}
	for _, c := range cases {
		var b bytes.Buffer
		if _, err := newTerminalWriter(&b).Write([]byte(c.in)); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%q: got %q, want %q", c.in, b.String(), c.want)
		}
	}
}

func TestTerminalWriterKeepsRunesSplitAcrossWrites(t *testing.T) {
	in := []byte("é\u202e🚪")
	for cut := 1; cut < len(in); cut++ {
		var b bytes.Buffer
		w := newTerminalWriter(&b)
		w.Write(in[:cut])
		w.Write(in[cut:])
		if want := `é\u202E🚪`; b.String() != want {
			t.Errorf("cut at %d: %q, want %q", cut, b.String(), want)
		}
	}
}

func TestTerminalWriterKeepsJSONValid(t *testing.T) {
	v := map[string]string{"name": "x\u0085\u202e\x1b[31my"}
	raw, _ := json.Marshal(v)
	var b bytes.Buffer
	newTerminalWriter(&b).Write(raw)
	var back map[string]string
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("%s: %v", b.Bytes(), err)
	}
	if back["name"] != v["name"] {
		t.Fatalf("round trip: %q, want %q", back["name"], v["name"])
	}
	if strings.ContainsAny(b.String(), "\x1b\u0085\u202e") {
		t.Fatalf("raw control characters in %q", b.String())
	}
}

// A hostile camera (or one a hostile user renamed) cannot reach the
// terminal through any name camctl prints.
func TestCamctlEscapesNamesFromACamera(t *testing.T) {
	hostile := "\x1b]0;owned\x07\x1b[2J\u202eevil\u009b"
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/users":
			json.NewEncoder(w).Encode([]user{{ID: "u1", Name: hostile, Role: "owner"}})
		case "/api/v1/snapshots":
			json.NewEncoder(w).Encode([]map[string]any{{"id": "s1", "cause": hostile}})
		case "/api/v1/users/invitations":
			json.NewEncoder(w).Encode([]map[string]any{{"id": "i1", "role": "viewer", "by": "u1", "by_name": hostile}})
		default:
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"error": hostile})
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)
	for _, args := range [][]string{
		{"users", "list"},
		{"users", "list", "--json"},
		{"snapshot", "list"},
		{"users", "invitations"},
		{"users", "revoke", "u1"}, // the error message comes from the camera
	} {
		_, out, errOut := camctlRun(storePath, args...)
		all := out + errOut
		if !strings.Contains(all, "evil") {
			t.Fatalf("%v printed nothing of the name:\n%s", args, all)
		}
		for _, r := range all {
			if dangerous(r) {
				t.Fatalf("%v printed %U raw:\n%q", args, r, all)
			}
		}
	}
}

func FuzzTerminalWriter(f *testing.F) {
	f.Add([]byte("Front door\n"), 3)
	f.Add([]byte("\x1b[2J\u202e\u009b"), 1)
	f.Add([]byte("é🚪\xff"), 2)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		var b bytes.Buffer
		w := newTerminalWriter(&b)
		if cut < 0 || cut > len(in) {
			cut = len(in) / 2
		}
		w.Write(in[:cut])
		w.Write(in[cut:])
		w.Write([]byte("\n")) // flushes a rune left incomplete
		out := b.String()
		if !utf8.ValidString(out) {
			t.Fatalf("%q became invalid UTF-8 %q", in, out)
		}
		for _, r := range out {
			if dangerous(r) {
				t.Fatalf("%q came out with %U raw: %q", in, r, out)
			}
		}
		if utf8.Valid(in) && !strings.ContainsFunc(string(in), dangerous) && out != string(in)+"\n" {
			t.Fatalf("safe %q changed to %q", in, out)
		}
	})
}

func TestPrivateFilesFromCamctl(t *testing.T) {
	// The credentials file is the one camctl keeps.
	path := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := loadStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v, want 0600", fi.Mode().Perm())
	}
}
