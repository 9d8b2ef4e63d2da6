package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/crash"
)

const logsUsage = `usage:
  camctl logs [--level LEVEL] [--since TIME] [--limit N] [--follow] [--json]

The log camd keeps on the camera (owners only): the newest lines, or
with --follow the lines as they come (until interrupted). LEVEL is
debug, info, warn or error (that level and above); TIME is RFC 3339, a
relative time such as -1h, or now. --json prints each line as camd
logged it.
`

// logsWait is how long one request of --follow waits for a line.
const logsWait = 25 * time.Second

func logsCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("camctl logs", flag.ContinueOnError)
	level := flags.String("level", "", "the least `level` shown: debug, info, warn, error")
	since := flags.String("since", "", "show lines from `TIME` on")
	limit := flags.Int("limit", 200, "the most lines shown at first")
	follow := flags.Bool("follow", false, "go on showing lines as camd logs them")
	asJSON := flags.Bool("json", false, "print the lines as JSON")
	flags.Usage = func() { fmt.Fprint(stderr, logsUsage) }
	cam, code := openCamera(flags, args, stderr)
	if cam == nil {
		return code
	}
	if flags.NArg() > 0 {
		fmt.Fprint(stderr, logsUsage)
		return 2
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *level != "" {
		q.Set("level", *level)
	}
	if *since != "" {
		q.Set("since", *since)
	}
	cam.client.Timeout = logsWait + 30*time.Second
	for {
		var ans api.LogsAnswer
		if err := cam.do("GET", "/api/v1/logs?"+q.Encode(), nil, &ans); err != nil {
			fmt.Fprintln(stderr, "camctl: logs:", err)
			return 1
		}
		for _, l := range ans.Entries {
			printLogLine(stdout, l, *asJSON)
		}
		if !*follow {
			return 0
		}
		q.Set("after", strconv.FormatUint(ans.Next, 10))
		q.Set("wait", logsWait.String())
		q.Set("limit", "1000")
		q.Del("since")
	}
}

// printLogLine prints a line as "TIME LEVEL message key=value ...", the
// attributes in name order, or as JSON.
func printLogLine(w io.Writer, line json.RawMessage, asJSON bool) {
	if asJSON {
		fmt.Fprintf(w, "%s\n", line)
		return
	}
	var m map[string]any
	if json.Unmarshal(line, &m) != nil {
		return
	}
	ts, _ := m["time"].(string)
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		ts = t.Local().Format("2006-01-02 15:04:05.000")
	}
	lvl, _ := m["level"].(string)
	msg, _ := m["msg"].(string)
	fmt.Fprintf(w, "%s %-5s %s", ts, lvl, msg)
	var keys []string
	for k := range m {
		if k != "time" && k != "level" && k != "msg" && k != "seq" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, _ := json.Marshal(m[k])
		if s, ok := m[k].(string); ok {
			v = []byte(strconv.Quote(s))
		}
		fmt.Fprintf(w, " %s=%s", k, v)
	}
	fmt.Fprintln(w)
}

const crashesUsage = `usage:
  camctl crashes list
  camctl crashes show ID
  camctl crashes send ID
  camctl crashes delete ID

Crash reports the camera kept (owners only, docs/observability.md):
show prints one (version, uptime, trace, the log's last lines); send
uploads it to the collector the camera is configured with (nothing is
sent otherwise); delete removes it.
`

func crashesCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("camctl crashes", flag.ContinueOnError)
	flags.Usage = func() { fmt.Fprint(stderr, crashesUsage) }
	return runVerb(flags, crashesUsage, map[string]verb{
		"list": {0, func(cam *camera, _ []string) error {
			var ans struct {
				Crashes []crash.Summary `json:"crashes"`
			}
			if err := cam.do("GET", "/api/v1/crashes", nil, &ans); err != nil {
				return err
			}
			if len(ans.Crashes) == 0 {
				fmt.Fprintln(stdout, "no crash reports")
			}
			for _, c := range ans.Crashes {
				sent := "not sent"
				if !c.Sent.IsZero() {
					sent = "sent " + c.Sent.Local().Format(time.DateTime)
				}
				fmt.Fprintf(stdout, "%s  %s  version %s  up %s  %s\n", c.ID, c.Time.Local().Format(time.DateTime), c.Version, c.Uptime.Round(time.Second), sent)
			}
			return nil
		}},
		"show": {1, func(cam *camera, args []string) error {
			var rep crash.Report
			if err := cam.do("GET", "/api/v1/crashes/"+url.PathEscape(args[0]), nil, &rep); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "crash    %s\ntime     %s\nversion  %s\nuptime   %s\n\n%s\n", rep.ID, rep.Time.Local().Format(time.RFC3339), rep.Version, rep.Uptime.Round(time.Second), rep.Trace)
			fmt.Fprintf(stdout, "\nthe log's last %d lines:\n", len(rep.Log))
			for _, l := range rep.Log {
				printLogLine(stdout, l, false)
			}
			return nil
		}},
		"send": {1, func(cam *camera, args []string) error {
			var s crash.Summary
			if err := cam.do("POST", "/api/v1/crashes/"+url.PathEscape(args[0])+"/send", struct{}{}, &s); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "sent %s\n", s.ID)
			return nil
		}},
		"delete": {1, func(cam *camera, args []string) error {
			if err := cam.do("DELETE", "/api/v1/crashes/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s\n", args[0])
			return nil
		}},
	}, args, stderr)
}
