package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

const settingsUsage = `usage:
  camctl settings get [--json] [KEY...]
  camctl settings set KEY=VALUE...      e.g. mute=true resolution=640x480 bitrate=1.5M
  camctl settings reset KEY...          back to the camera's default
`

// settingsCmd reads and changes the camera's settings (owner only).
func settingsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "get" && args[0] != "set" && args[0] != "reset") {
		fmt.Fprint(stderr, settingsUsage)
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("camctl settings "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addCameraFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args[1:]); err != nil {
		return 2
	}
	if verb != "get" && fs.NArg() == 0 {
		fmt.Fprint(stderr, settingsUsage)
		return 2
	}
	cam, err := cf.open()
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	var cur map[string]json.RawMessage
	if err := cam.do("GET", "/api/v1/settings", nil, &cur); err != nil {
		fmt.Fprintln(stderr, "camctl: settings:", err)
		return 1
	}
	show := fs.Args()
	if verb != "get" {
		patch := map[string]json.RawMessage{}
		show = nil
		for _, a := range fs.Args() {
			key, value, ok := strings.Cut(a, "=")
			switch {
			case verb == "reset":
				key, value, ok = a, "", true
				patch[key] = json.RawMessage("null")
			case !ok || key == "":
				fmt.Fprintf(stderr, "camctl: %q: want KEY=VALUE\n", a)
				return 2
			default:
				patch[key] = settingValue(cur[key], value)
			}
			if _, shown := cur[key]; !shown {
				if _, ok := cur[key+"_set"]; ok {
					key += "_set" // a write-only secret (whip_token): whether it is set
				}
			}
			show = append(show, key)
		}
		var after map[string]json.RawMessage
		if err := cam.do("PATCH", "/api/v1/settings", patch, &after); err != nil {
			fmt.Fprintln(stderr, "camctl: settings:", err)
			return 1
		}
		cur = after
	}
	return printSettings(stdout, stderr, cur, show, *asJSON)
}

// settingValue turns the text after KEY= into JSON of the type the
// setting has now: true/false (also on/off, yes/no), a number (with a k
// or M suffix: 1.5M is 1500000), a list (comma-separated; empty: none),
// or text. Anything else is sent as text and the camera says what is
// allowed.
func settingValue(now json.RawMessage, text string) json.RawMessage {
	quoted, _ := json.Marshal(text)
	var v any
	json.Unmarshal(now, &v)
	switch v.(type) {
	case bool:
		switch strings.ToLower(text) {
		case "true", "on", "yes", "1":
			return json.RawMessage("true")
		case "false", "off", "no", "0":
			return json.RawMessage("false")
		}
	case float64:
		mult := 1.0
		t := strings.TrimSpace(text)
		switch {
		case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "K"):
			mult, t = 1e3, t[:len(t)-1]
		case strings.HasSuffix(t, "M"):
			mult, t = 1e6, t[:len(t)-1]
		}
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			return json.RawMessage(strconv.FormatFloat(f*mult, 'f', -1, 64))
		}
	case []any:
		list := []string{}
		for _, item := range strings.Split(text, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		b, _ := json.Marshal(list)
		return b
	}
	return quoted
}

func printSettings(stdout, stderr io.Writer, all map[string]json.RawMessage, keys []string, asJSON bool) int {
	if len(keys) == 0 {
		keys = slices.Sorted(maps.Keys(all))
	}
	out := map[string]json.RawMessage{}
	for _, k := range keys {
		v, ok := all[k]
		if !ok {
			fmt.Fprintf(stderr, "camctl: no setting %q (settings: %s)\n", k, strings.Join(slices.Sorted(maps.Keys(all)), ", "))
			return 1
		}
		out[k] = v
	}
	if asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	for _, k := range keys {
		v := string(out[k])
		var s string
		if json.Unmarshal(out[k], &s) == nil {
			v = s
		}
		fmt.Fprintf(stdout, "%-20s %s\n", k, v)
	}
	return 0
}
