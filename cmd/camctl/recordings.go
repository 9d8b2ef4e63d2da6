package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// timeline is the answer of GET /api/v1/recordings.
type timeline struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Spans    []span    `json:"spans"`
	Gaps     []span    `json:"gaps"`
	Recorded float64   `json:"recorded_s"`
	Status   struct {
		Volumes  int    `json:"volumes"`
		Bytes    int64  `json:"bytes"`
		Quota    int64  `json:"quota_bytes"`
		Paused   string `json:"paused"`
		Recorder struct {
			Mode string `json:"mode"`
		} `json:"recorder"`
	} `json:"status"`
}

type span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

const recordingsUsage = `usage:
  camctl recordings list [--from TIME] [--to TIME]
  camctl recordings export --from TIME --to TIME --out F.mp4
  camctl recordings status
  camctl recordings delete --before TIME | --all
  camctl recordings trigger [--seconds N] [--cause NAME]

TIME is RFC 3339 (2025-06-01T08:00:00Z), now, or relative to the
camera's clock (-60s, -2h). Export resumes an interrupted download of
the same range into F.mp4.part.
`

func recordingsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camctl recordings", flag.ContinueOnError)
	from := fs.String("from", "-1h", "start `TIME`")
	to := fs.String("to", "now", "end `TIME`")
	out := fs.String("out", "", "write the MP4 to this `file`")
	before := fs.String("before", "", "delete whole volumes whose recordings end before `TIME`")
	all := fs.Bool("all", false, "delete every recording")
	seconds := fs.Float64("seconds", 1, "how long the motion lasts")
	cause := fs.String("cause", "camctl", "what saw the motion")
	quiet := fs.Bool("quiet", false, "no progress bar")
	span := func() url.Values { return url.Values{"from": {*from}, "to": {*to}} }
	return runVerb(fs, recordingsUsage, map[string]verb{
		"list": {0, func(cam *camera, _ []string) error {
			var tl timeline
			if err := cam.do("GET", "/api/v1/recordings?"+span().Encode(), nil, &tl); err != nil {
				return err
			}
			printTimeline(stdout, tl)
			return nil
		}},
		"status": {0, func(cam *camera, _ []string) error {
			var st map[string]any
			if err := cam.do("GET", "/api/v1/recordings/status", nil, &st); err != nil {
				return err
			}
			printJSON(stdout, st)
			return nil
		}},
		"export": {0, func(cam *camera, _ []string) error {
			if *out == "" {
				fmt.Fprintln(stderr, "camctl: recordings export needs --out F.mp4")
				return errUsage
			}
			if err := export(cam, span(), *out, stderr, *quiet); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s\n", *out)
			return nil
		}},
		"delete": {0, func(cam *camera, _ []string) error {
			dq := url.Values{}
			switch {
			case *all:
				dq.Set("all", "1")
			case *before != "":
				dq.Set("before", *before)
			default:
				fmt.Fprintln(stderr, "camctl: recordings delete needs --before TIME or --all")
				return errUsage
			}
			var res map[string]int
			if err := cam.do("DELETE", "/api/v1/recordings?"+dq.Encode(), nil, &res); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%d volumes deleted\n", res["volumes_deleted"])
			return nil
		}},
		"trigger": {0, func(cam *camera, _ []string) error {
			if err := cam.do("POST", "/api/v1/motion", map[string]any{"cause": *cause, "seconds": *seconds}, nil); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "motion triggered")
			return nil
		}},
	}, args, stderr)
}

func printTimeline(w io.Writer, tl timeline) {
	fmt.Fprintf(w, "%s to %s: %s recorded in %d spans\n", tl.From.Local().Format(time.DateTime), tl.To.Local().Format(time.DateTime),
		time.Duration(tl.Recorded*float64(time.Second)).Round(time.Millisecond), len(tl.Spans))
	type row struct {
		start, end time.Time
		gap        bool
	}
	var rows []row
	for _, s := range tl.Spans {
		rows = append(rows, row{s.Start, s.End, false})
	}
	for _, g := range tl.Gaps {
		rows = append(rows, row{g.Start, g.End, true})
	}
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && rows[j].start.Before(rows[j-1].start); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
	for _, r := range rows {
		kind := "recorded"
		if r.gap {
			kind = "gap"
		}
		fmt.Fprintf(w, "  %-8s  %s  %s  %10s\n", kind, r.start.Local().Format("2006-01-02 15:04:05.000"),
			r.end.Local().Format("15:04:05.000"), r.end.Sub(r.start).Round(time.Millisecond))
	}
	st := tl.Status
	fmt.Fprintf(w, "mode %s, %d volumes, %s of %s quota", st.Recorder.Mode, st.Volumes, mib(st.Bytes), mib(st.Quota))
	if st.Paused != "" {
		fmt.Fprintf(w, ", PAUSED: %s", st.Paused)
	}
	fmt.Fprintln(w)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// export downloads a range into out, through out.part, resuming a partial
// download of the same range with a range request.
func export(cam *camera, q url.Values, out string, stderr io.Writer, quiet bool) error {
	client := *cam.client
	client.Timeout = 0 // a long export takes what it takes
	// Fix the range to the camera's answer, so that a resumed download
	// asks for exactly the same bytes even with relative times.
	head, err := cam.request(&client, "HEAD", "/api/v1/recordings/export?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	head.Body.Close()
	start, end := head.Header.Get("X-Camd-Start"), head.Header.Get("X-Camd-End")
	total, _ := strconv.ParseInt(head.Header.Get("Content-Length"), 10, 64)
	etag := head.Header.Get("ETag")
	if start == "" || end == "" || total <= 0 {
		return errors.New("the camera's answer lacks the export's range or size")
	}
	if t := head.Header.Get("X-Camd-Truncated"); t != "" {
		fmt.Fprintf(stderr, "camctl: note: %s (at %s)\n", t, end)
	}
	path := "/api/v1/recordings/export?" + url.Values{"from": {start}, "to": {end}}.Encode()

	part := out + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	have, _ := f.Seek(0, io.SeekEnd)
	if have > total {
		have = 0
	}
	hdr := http.Header{}
	if have > 0 && have < total {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", have))
		hdr.Set("If-Range", etag)
	}
	resp, err := cam.request(&client, "GET", path, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !quiet {
			fmt.Fprintf(stderr, "resuming at %s\n", mib(have))
		}
	case http.StatusOK:
		have = 0
		if err := f.Truncate(0); err != nil {
			return err
		}
	default:
		return fmt.Errorf("export: %s", resp.Status)
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}
	p := &progress{w: raw(stderr), total: total, done: have, quiet: quiet, start: time.Now(), from: have}
	_, err = io.Copy(f, io.TeeReader(resp.Body, p))
	p.finish()
	if err != nil {
		return fmt.Errorf("download interrupted at %s; run the same command again to resume: %w", mib(p.done), err)
	}
	if p.done != total {
		return fmt.Errorf("download ended at %s of %s; run the same command again to resume", mib(p.done), mib(total))
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(part, out)
}

// request makes an authorized request and returns the response (status
// codes of 400 and above become errors).
func (c *camera) request(client *http.Client, method, path string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequest(method, c.url(path), nil)
	if err != nil {
		return nil, err
	}
	req.Header = c.header()
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		msg := strings.TrimSpace(string(b))
		if method == "HEAD" {
			msg = "(no details in an answer to HEAD)"
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return resp, nil
}

// progress draws a progress bar as bytes go through it.
type progress struct {
	w           io.Writer
	total, done int64
	from        int64
	quiet       bool
	start, last time.Time
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond {
		p.last = now
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	if p.quiet || p.total <= 0 {
		return
	}
	const width = 30
	frac := float64(p.done) / float64(p.total)
	n := int(frac * width)
	rate := float64(p.done-p.from) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %s of %s  %.1f MB/s ", strings.Repeat("#", n), strings.Repeat(".", width-n),
		frac*100, mib(p.done), mib(p.total), rate/1e6)
}

func (p *progress) finish() {
	if p.quiet {
		return
	}
	p.draw()
	fmt.Fprintln(p.w)
}
