package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/camd-project/camd/storage/card"
)

const storageUsage = `usage:
  camctl storage status
  camctl storage check
  camctl storage format --card DEVICE

The recordings' card (docs/storage.md). check unmounts it, checks and
repairs its file system, and mounts it again; format erases everything
on it (--card names the card's device, as status shows it, to
confirm). Recording pauses meanwhile; live view goes on. Both need the
owner role.
`

// cardStatus is the part of GET /api/v1/recordings/status about where
// the recordings go.
type cardStatus struct {
	Paused      string `json:"paused"`
	Volumes     int    `json:"volumes"`
	TotalBytes  int64  `json:"total_bytes"`
	FreeBytes   int64  `json:"free_bytes"`
	OthersBytes int64  `json:"others_bytes"`
	Card        *struct {
		card.State
		Error       string `json:"error"`
		Busy        string `json:"busy"`
		CamdBytes   int64  `json:"camd_bytes"`
		OthersBytes int64  `json:"others_bytes"`
		LastError   string `json:"last_error"`
	} `json:"card"`
}

// opTimeout bounds a check or a format as camd does (15 min), and a
// little more.
const opTimeout = 16 * time.Minute

func storageCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("camctl storage", flag.ContinueOnError)
	confirm := flags.String("card", "", "the card's `device`, to confirm a format")
	status := func(cam *camera) (st cardStatus, err error) {
		return st, cam.do("GET", "/api/v1/recordings/status", nil, &st)
	}
	return runVerb(flags, storageUsage, map[string]verb{
		"status": {0, func(cam *camera, _ []string) error {
			st, err := status(cam)
			if err == nil {
				printCard(stdout, st)
			}
			return err
		}},
		"check": {0, func(cam *camera, _ []string) error {
			cam.client.Timeout = opTimeout
			var res card.Result
			if err := cam.do("POST", "/api/v1/storage/check", struct{}{}, &res); err != nil {
				return err
			}
			return reportResult(stdout, res)
		}},
		"format": {0, func(cam *camera, _ []string) error {
			st, err := status(cam)
			if err != nil {
				return err
			}
			dev := ""
			if st.Card != nil {
				dev = st.Card.Device
			}
			if *confirm == "" || *confirm != dev {
				fmt.Fprintf(stderr, "camctl: formatting erases everything on the card; to confirm, name its device: camctl storage format --card %s\n", dev)
				return errUsage
			}
			cam.client.Timeout = opTimeout
			var res card.Result
			if err := cam.do("POST", "/api/v1/storage/format", map[string]string{"confirm": "format " + dev}, &res); err != nil {
				return err
			}
			return reportResult(stdout, res)
		}},
	}, args, stderr)
}

// reportResult prints what a check or format did, and is an error when
// it left the card unusable: the command then exits 1.
func reportResult(w io.Writer, res card.Result) error {
	printResult(w, res)
	switch {
	case res.Outcome == "failed" || res.Outcome == "errors left":
		return fmt.Errorf("%s: %s", res.Device, res.Outcome)
	case !res.Mounted:
		return fmt.Errorf("%s is not mounted", res.Device)
	}
	return nil
}

// printCard shows where the recordings go and how full it is.
func printCard(w io.Writer, st cardStatus) {
	recording := "recording"
	if st.Paused != "" {
		recording = "paused: " + st.Paused
	}
	c := st.Card
	if c == nil {
		fmt.Fprintf(w, "card         none: the recordings are on the device's own storage\n")
	} else {
		state := []string{"out", "not mounted", "writable"}
		if c.Present {
			state[0] = "in"
		}
		if c.Mounted {
			state[1] = "mounted"
		}
		if c.ReadOnly {
			state[2] = "read-only"
		}
		fmt.Fprintf(w, "card         %s\n", strings.Join(state, ", "))
		if c.Device != "" {
			fmt.Fprintf(w, "device       %s (%s) at %s\n", c.Device, c.FSType, c.MountPoint)
		}
		if c.Busy != "" {
			fmt.Fprintf(w, "busy         %s\n", c.Busy)
		}
		if c.Error != "" {
			fmt.Fprintf(w, "error        %s\n", c.Error)
		}
		if c.LastError != "" && c.LastError != c.Error {
			fmt.Fprintf(w, "last error   %s\n", c.LastError)
		}
	}
	switch {
	case c != nil && c.Mounted:
		fmt.Fprintf(w, "space        %s, %s free; camd's recordings %s, other files %s\n",
			mib(c.TotalBytes), mib(c.FreeBytes), mib(c.CamdBytes), mib(c.OthersBytes))
	case c == nil && st.TotalBytes > 0:
		fmt.Fprintf(w, "space        %s, %s free; other files %s\n", mib(st.TotalBytes), mib(st.FreeBytes), mib(st.OthersBytes))
	}
	fmt.Fprintf(w, "recording    %s (%d volumes)\n", recording, st.Volumes)
}

// printResult shows what a check or format did.
func printResult(w io.Writer, res card.Result) {
	fmt.Fprintf(w, "%s: %s (%s exited %d in %.1f s)\n", res.Device, res.Outcome, strings.Join(res.Command, " "), res.ExitCode, res.Seconds)
	if res.Output != "" {
		fmt.Fprintf(w, "%s\n", strings.TrimRight(res.Output, "\n"))
	}
	if res.Error != "" {
		fmt.Fprintf(w, "error: %s\n", res.Error)
	}
	if res.Mounted {
		fmt.Fprintf(w, "mounted again (%s)\n", res.FSType)
	} else {
		fmt.Fprintln(w, "not mounted: recording stays paused")
	}
}
