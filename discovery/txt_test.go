package discovery

import (
	"slices"
	"strings"
	"testing"
)

func TestTXTRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Info
		want []string
	}{
		{"unpaired", Info{ID: "ABCDEFGHIJKLMNOP", Model: "sim", Firmware: "1.0", Discriminator: 4095},
			[]string{"txtvers=1", "api=1", "id=ABCDEFGHIJKLMNOP", "model=sim", "fw=1.0", "paired=0", "disc=4095"}},
		{"paired hides the discriminator", Info{ID: "X", Paired: true, Discriminator: 7},
			[]string{"txtvers=1", "api=1", "id=X", "model=", "fw=", "paired=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.TXT()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("TXT = %q, want %q", got, tc.want)
			}
			back, ok := ParseTXT(got)
			want := tc.in
			want.Version, want.API = 1, 1
			if want.Paired {
				want.Discriminator = 0
			}
			if !ok || back != want {
				t.Fatalf("ParseTXT = %+v, %v; want %+v", back, ok, want)
			}
		})
	}
}

func TestTXTBoundsValues(t *testing.T) {
	for _, kv := range (Info{ID: "I", Firmware: strings.Repeat("v", 300)}).TXT() {
		if len(kv) > 255 {
			t.Fatalf("TXT string of %d bytes", len(kv))
		}
	}
}

func TestParseTXTIgnoresJunk(t *testing.T) {
	i, ok := ParseTXT([]string{"", "=", "noequals", "disc=99999", "paired=yes", "ID=abc", "txtvers=x"})
	if !ok || i.ID != "abc" || i.Discriminator != 0 || i.Paired || i.Version != 0 {
		t.Fatalf("got %+v %v", i, ok)
	}
	if _, ok := ParseTXT([]string{"model=x"}); ok {
		t.Fatal("a record without id was accepted")
	}
}
