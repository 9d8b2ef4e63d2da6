package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/discovery/lan"
)

// camerasDiscovered lists the cameras on the NVR's LAN that it has not
// added (owners only): camd cameras (mDNS) and cameras of other makes
// (ONVIF WS-Discovery), each once, asked for --window (500ms to 5s).
func camerasDiscovered(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("camctl cameras discovered", flag.ContinueOnError)
	window := flags.Duration("window", api.DefaultDiscoveryWindow, "how long the NVR asks the LAN")
	asJSON := flags.Bool("json", false, "print JSON")
	flags.Usage = func() { fmt.Fprint(stderr, camerasUsage) }
	cam, code := openCamera(flags, args, stderr)
	if cam == nil {
		return code
	}
	if flags.NArg() > 0 {
		fmt.Fprint(stderr, camerasUsage)
		return 2
	}
	cam.client.Timeout = *window + 30*time.Second
	var ans api.DiscoveredAnswer
	if err := cam.do("GET", "/api/v1/cameras/discovered?"+url.Values{"window": {window.String()}}.Encode(), nil, &ans); err != nil {
		fmt.Fprintln(stderr, "camctl: cameras discovered:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(ans)
		return 0
	}
	printDiscovered(stdout, ans)
	return 0
}

// printDiscovered prints the cameras as a table.
func printDiscovered(w io.Writer, ans api.DiscoveredAnswer) {
	if ans.NotSearched != "" {
		fmt.Fprintf(w, "the NVR did not search the LAN: %s\n", ans.NotSearched)
		return
	}
	if len(ans.Cameras) == 0 {
		fmt.Fprintf(w, "no camera that is not added answered on %s within %v\n",
			strings.Join(ans.Interfaces, ", "), time.Duration(ans.WindowMs)*time.Millisecond)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tMODEL\tADDRESS\tID\tPAIRED\tVIA")
	for _, c := range ans.Cameras {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Kind, cmp.Or(c.Name, "-"), cmp.Or(c.Model, "-"), discoveredAddr(c),
			cmp.Or(c.ID, c.Endpoint, "-"), pairedText(c.Paired), strings.Join(c.Via, "+"))
	}
	tw.Flush()
}

// discoveredAddr is where to reach a camera: a camd camera's first
// address and port, another's first ONVIF service URL or address.
func discoveredAddr(c lan.Camera) string {
	switch {
	case c.Kind == lan.Camd && len(c.Addrs) > 0:
		return netip.AddrPortFrom(c.Addrs[0], uint16(c.Port)).String()
	case len(c.XAddrs) > 0:
		return c.XAddrs[0]
	case len(c.Addrs) > 0:
		return c.Addrs[0].String()
	}
	return "-"
}

// pairedText says whether a camera has an owner: "-" when it does not
// say (other makes).
func pairedText(p *bool) string {
	if p == nil {
		return "-"
	}
	return yesNo(*p)
}
