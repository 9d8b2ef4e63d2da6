package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/camd-project/camd/discovery"
	"github.com/camd-project/camd/discovery/wsd"
)

// discover lists the cameras on the LAN: camd cameras over mDNS, and with
// --onvif any maker's ONVIF device over WS-Discovery.
func discover(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camctl discover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", time.Second, "how long to listen for answers")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	onvif := fs.Bool("onvif", false, "also send an ONVIF WS-Discovery probe and list every device that answers")
	watch := fs.Bool("watch", false, "print each camera as it appears, changes or leaves (one line each; JSON lines with --json)")
	ifaces := fs.String("interface", "", "comma-separated `names` of the interfaces to use (default: every multicast-capable one)")
	storePath := fs.String("store", defaultStore(), "credentials `file` (tells which cameras were added)")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "camctl discover: takes only flags, and a positive --timeout")
		return 2
	}
	st, err := loadStore(*storePath)
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	var names []string
	if *ifaces != "" {
		names = strings.Split(*ifaces, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	opts := discovery.BrowseOptions{
		Interfaces: names,
		Added:      func(id string) bool { return st.Devices[id] != nil },
	}
	var outMu sync.Mutex
	if *watch {
		start := time.Now()
		opts.Changed = func(c discovery.Camera, gone bool) {
			outMu.Lock()
			defer outMu.Unlock()
			event := "found"
			if gone {
				event = "gone"
			}
			if *asJSON {
				json.NewEncoder(stdout).Encode(struct {
					Event   string           `json:"event"`
					AfterMs float64          `json:"after_ms"`
					Camera  discovery.Camera `json:"camera"`
				}{event, float64(time.Since(start).Microseconds()) / 1000, c})
				return
			}
			fmt.Fprintf(stdout, "%-5s %s  %s  id=%s paired=%s added=%s\n", event, c.Name, c.Addr(), c.ID, yesNo(c.Paired), yesNo(c.Added))
		}
	}

	var (
		found   []wsd.Found
		wsdErr  error
		wsdDone = make(chan struct{})
	)
	go func() {
		defer close(wsdDone)
		if !*onvif {
			return
		}
		var o wsd.ProbeOptions
		if names != nil {
			if o.Interfaces, wsdErr = interfacesNamed(names); wsdErr != nil {
				return
			}
		}
		found, wsdErr = wsd.Probe(ctx, o)
	}()
	cams, err := discovery.Browse(ctx, opts)
	<-wsdDone
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	if wsdErr != nil {
		fmt.Fprintln(stderr, "camctl: onvif:", wsdErr)
		return 1
	}
	if *watch {
		return 0
	}
	if *asJSON {
		out := struct {
			Cameras []discovery.Camera `json:"cameras"`
			ONVIF   []onvifDevice      `json:"onvif,omitempty"`
		}{Cameras: cams}
		for _, f := range found {
			out.ONVIF = append(out.ONVIF, describeONVIF(f))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if len(cams) == 0 {
		fmt.Fprintf(tw, "no camd camera answered within %v\n", *timeout)
	} else {
		fmt.Fprintln(tw, "NAME\tADDRESS\tID\tMODEL\tFIRMWARE\tPAIRED\tADDED")
		for _, c := range cams {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Addr(), c.ID, c.Model, c.Firmware, yesNo(c.Paired), yesNo(c.Added))
		}
	}
	if *onvif {
		fmt.Fprintln(tw)
		if len(found) == 0 {
			fmt.Fprintf(tw, "no ONVIF device answered within %v\n", *timeout)
		} else {
			fmt.Fprintln(tw, "ONVIF NAME\tHARDWARE\tADDRESS\tENDPOINT")
			for _, f := range found {
				d := describeONVIF(f)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, d.Hardware, strings.Join(d.XAddrs, " "), d.Endpoint)
			}
		}
	}
	tw.Flush()
	return 0
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// onvifDevice is a WS-Discovery answer with the ONVIF name and hardware
// scopes read out.
type onvifDevice struct {
	wsd.Found
	Name     string `json:"name,omitempty"`
	Hardware string `json:"hardware,omitempty"`
}

func describeONVIF(f wsd.Found) onvifDevice {
	return onvifDevice{Found: f, Name: f.Scope(wsd.ScopeName), Hardware: f.Scope(wsd.ScopeHardware)}
}

func interfacesNamed(names []string) ([]net.Interface, error) {
	var out []net.Interface
	for _, n := range names {
		ifi, err := net.InterfaceByName(n)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", n, err)
		}
		out = append(out, *ifi)
	}
	return out, nil
}
