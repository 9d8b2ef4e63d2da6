package main

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestFlagsBeforeOrAfterArguments(t *testing.T) {
	cases := []struct {
		args  []string
		store string
		json  bool
		pos   []string
	}{
		{[]string{"CODE"}, "default", false, []string{"CODE"}},
		{[]string{"--store", "F", "CODE"}, "F", false, []string{"CODE"}},
		{[]string{"CODE", "--store", "F"}, "F", false, []string{"CODE"}},
		{[]string{"A", "--json", "B", "--store=F"}, "F", true, []string{"A", "B"}},
		{[]string{"A", "--", "--store", "F"}, "default", false, []string{"A", "--store", "F"}},
		{[]string{"--store", "F", "--", "-x"}, "F", false, []string{"-x"}},
		{nil, "default", false, nil},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		store := fs.String("store", "default", "")
		asJSON := fs.Bool("json", false, "")
		if err := parseFlags(fs, c.args); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if *store != c.store || *asJSON != c.json || !slices.Equal(fs.Args(), c.pos) && len(fs.Args())+len(c.pos) > 0 {
			t.Errorf("%q: store %q json %v args %q, want %q %v %q", c.args, *store, *asJSON, fs.Args(), c.store, c.json, c.pos)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := parseFlags(fs, []string{"CODE", "--nope"}); err == nil {
		t.Error("an unknown flag after the arguments was taken")
	}
}

func TestVerbFirst(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"--store", "F", "view"}, []string{"view", "--store", "F"}},
		{[]string{"--store=F", "--addr", "h:1", "users", "invite"}, []string{"users", "invite", "--store=F", "--addr", "h:1"}},
		{[]string{"view", "--store", "F"}, []string{"view", "--store", "F"}},
		{[]string{"--help"}, []string{"--help"}},
		{[]string{"--store", "F"}, []string{"--store", "F"}},
	} {
		if got := verbFirst(c.in); !slices.Equal(got, c.want) {
			t.Errorf("verbFirst(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestCamctlFlagsAnywhere runs camctl with its flags before the verb and
// after the positional arguments.
func TestCamctlFlagsAnywhere(t *testing.T) {
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" || r.URL.Path != "/api/v1/users/invitations/abc" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)
	for _, args := range [][]string{
		{"--store", storePath, "users", "cancel", "abc"},
		{"users", "cancel", "abc", "--store", storePath},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 || !strings.Contains(out.String(), "abc cancelled") {
			t.Errorf("camctl %q: %d %q %q", args, code, out.String(), errOut.String())
		}
	}
	// The pairing code before --store: camctl reads the code (and
	// refuses this one) instead of printing its usage.
	var out, errOut bytes.Buffer
	if code := run([]string{"pair", "CAMD1:garbage", "--store", storePath}, &out, &errOut); code != 1 || strings.Contains(errOut.String(), "usage") {
		t.Errorf("pair CODE --store F: %d %q", code, errOut.String())
	}
}
