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
	verb := "help"
	if len(args) > 0 {
		verb, args = args[0], args[1:]
	}
	if verb != "status" && verb != "check" && verb != "format" {
		fmt.Fprint(stderr, storageUsage)
		return 2
	}
	flags := flag.NewFlagSet("camctl storage "+verb, flag.ContinueOnError)
	confirm := flags.String("card", "", "the card's `device`, to confirm a format")
	cam, code := openCamera(flags, args, stderr)
	if cam == nil {
		return code
	}
	var st cardStatus
	err := cam.do("GET", "/api/v1/recordings/status", nil, &st)
	var res card.Result
	switch {
	case err != nil:
	case verb == "status":
		printCard(stdout, st)
		return 0
	case verb == "check":
		cam.client.Timeout = opTimeout
		err = cam.do("POST", "/api/v1/storage/check", struct{}{}, &res)
	default: // format
		dev := ""
		if st.Card != nil {
			dev = st.Card.Device
		}
		if *confirm == "" || *confirm != dev {
			fmt.Fprintf(stderr, "camctl: formatting erases everything on the card; to confirm, name its device: camctl storage format --card %s\n", dev)
			return 2
		}
		cam.client.Timeout = opTimeout
		err = cam.do("POST", "/api/v1/storage/format", map[string]string{"confirm": "format " + dev}, &res)
	}
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	printResult(stdout, res)
	if res.Outcome == "failed" || res.Outcome == "errors left" || !res.Mounted {
		return 1
	}
	return 0
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
