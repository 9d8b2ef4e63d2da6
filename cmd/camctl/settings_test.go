package main

import (
	"encoding/json"
	"testing"
)

func TestSettingValueFollowsTheCurrentType(t *testing.T) {
	cases := []struct {
		now, text, want string
	}{
		{`false`, "on", `true`},
		{`true`, "No", `false`},
		{`true`, "maybe", `"maybe"`}, // the camera says what is allowed
		{`30`, "15", `15`},
		{`2000000`, "1.5M", `1500000`},
		{`2000000`, "800k", `800000`},
		{`30`, "fast", `"fast"`},
		{`"camd"`, "Front door", `"Front door"`},
		{`"camd"`, "42", `"42"`}, // a name stays text
		{``, "2", `"2"`},         // an unknown key: sent as text
		{`[]`, "https://a.example, https://b.example:8123", `["https://a.example","https://b.example:8123"]`},
		{`["https://a.example"]`, "", `[]`},
	}
	for _, c := range cases {
		got := settingValue(json.RawMessage(c.now), c.text)
		if string(got) != c.want {
			t.Errorf("%s then %q: %s, want %s", c.now, c.text, got, c.want)
		}
	}
}
