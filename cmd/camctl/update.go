package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/camd-project/camd/update"
)

const updateUsage = `usage:
  camctl update status
  camctl update check
  camctl update apply [--wait=false] [VERSION]

Software updates (docs/updates.md), owners only. status shows the
version running and the update offered with its notes and size; check
asks the signed feed now; apply downloads, verifies and installs the
offered update (VERSION, if given, must be the one offered) and reboots
the camera into it, which keeps it once it is healthy or goes back.
Checking is off until: camctl settings set update_check=on
`

// updatePoll is how often apply --wait asks how the update goes.
const updatePoll = time.Second

func updateCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("camctl update", flag.ContinueOnError)
	wait := flags.Bool("wait", true, "follow the download and install until the camera reboots")
	show := func(cam *camera, method, path string, body any) error {
		var st update.Status
		if err := cam.do(method, path, body, &st); err != nil {
			return err
		}
		printUpdate(stdout, st)
		return nil
	}
	return runVerb(flags, updateUsage, map[string]verb{
		"status": {0, func(cam *camera, _ []string) error { return show(cam, "GET", "/api/v1/update", nil) }},
		"check": {0, func(cam *camera, _ []string) error {
			cam.client.Timeout = 2 * time.Minute
			return show(cam, "POST", "/api/v1/update/check", struct{}{})
		}},
		"apply": {anyArgs, func(cam *camera, args []string) error {
			if len(args) > 1 {
				return errUsage
			}
			return applyUpdate(cam, strings.Join(args, ""), *wait, stdout)
		}},
	}, args, stderr)
}

// applyUpdate approves the offered update (version, if given, must be
// it) and follows it until the camera reboots.
func applyUpdate(cam *camera, version string, wait bool, stdout io.Writer) error {
	var st update.Status
	if err := cam.do("GET", "/api/v1/update", nil, &st); err != nil {
		return err
	}
	a := st.Available
	switch {
	case a == nil:
		return errors.New("no update offered (camctl update check asks the feed)")
	case version != "" && version != a.Version:
		return fmt.Errorf("%s is offered, not %s", a.Version, version)
	}
	fmt.Fprintf(stdout, "applying %s (%s) over %s\n", a.Version, mib(a.Size), st.Version)
	if err := cam.do("POST", "/api/v1/update/apply", map[string]string{"version": a.Version}, &st); err != nil {
		return err
	}
	if !wait {
		return nil
	}
	last := ""
	for {
		line := st.State
		if p := st.Progress; p != nil && st.State == update.Downloading {
			line = fmt.Sprintf("downloading %s of %s", mib(p.Done), mib(p.Total))
		}
		if line != last {
			fmt.Fprintln(stdout, line)
			last = line
		}
		switch {
		case st.State == update.Rebooting || st.Pending != nil:
			fmt.Fprintf(stdout, "installed %s; the camera reboots into it and keeps it once healthy (camctl update status)\n", a.Version)
			return nil
		case st.State == update.Idle && st.LastError != "":
			return errors.New(st.LastError)
		}
		time.Sleep(updatePoll)
		if err := cam.do("GET", "/api/v1/update", nil, &st); err != nil {
			// The camera went away: rebooting.
			fmt.Fprintf(stdout, "the camera stopped answering (rebooting?): %v\n", err)
			return nil
		}
	}
}

func printUpdate(w io.Writer, st update.Status) {
	checking := "off (camctl settings set update_check=on)"
	if st.Enabled {
		checking = "on"
		if !st.NextCheck.IsZero() {
			checking += ", next " + st.NextCheck.Local().Format(time.RFC3339)
		}
	}
	fmt.Fprintf(w, "version      %s\n", st.Version)
	fmt.Fprintf(w, "checking     %s\n", checking)
	if !st.LastCheck.IsZero() {
		fmt.Fprintf(w, "last check   %s\n", st.LastCheck.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "state        %s\n", st.State)
	if a := st.Available; a != nil {
		fmt.Fprintf(w, "available    %s (%s): camctl update apply %s\n", a.Version, mib(a.Size), a.Version)
		for _, l := range strings.Split(strings.TrimSpace(a.Notes), "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	} else {
		fmt.Fprintln(w, "available    none")
	}
	if p := st.Progress; p != nil {
		fmt.Fprintf(w, "download     %s of %s\n", mib(p.Done), mib(p.Total))
	}
	if p := st.Pending; p != nil {
		fmt.Fprintf(w, "pending      %s (from %s), waiting for its health check\n", p.Version, p.From)
	}
	if st.RolledBack != "" {
		fmt.Fprintf(w, "rolled back  %s\n", st.RolledBack)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "last error   %s\n", st.LastError)
	}
}
