package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/network"
)

const wifiUsage = `usage:
  camctl wifi status
  camctl wifi scan
  camctl wifi join [--security psk|sae|psk+sae|open] [--hidden] [--passphrase-file FILE] SSID
  camctl wifi forget
  camctl wifi code [--wait=false]
  camctl wifi setup

Wi-Fi setup (docs/network.md), owners only. join reads the passphrase
from --passphrase-file, or from the first line of standard input ("-"):
never from the command line, where other users and the shell history
see it. A join that fails keeps the camera on its old network and says
why. code opens the 2-minute window in which the camera reads a Wi-Fi
QR code (WIFI:T:WPA;S:…;P:…;;) shown to its lens, and follows it.
setup shows the access point the camera opens in setup mode (the pair
button held 5 s): once pairing replaced the setup code's secret, the
code no longer tells it.
`

// wifiPoll is how often code --wait asks how the window goes.
const wifiPoll = time.Second

func wifiCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("camctl wifi", flag.ContinueOnError)
	security := flags.String("security", "", "open, psk, sae or psk+sae (default psk with a passphrase)")
	hidden := flags.Bool("hidden", false, "the network does not broadcast its SSID")
	passFile := flags.String("passphrase-file", "-", `a file whose first line is the passphrase ("-": standard input)`)
	wait := flags.Bool("wait", true, "follow the code window until it closes")
	return runVerb(flags, wifiUsage, map[string]verb{
		"status": {0, func(cam *camera, _ []string) error {
			var st api.WiFiStatus
			if err := cam.do("GET", "/api/v1/network/wifi", nil, &st); err != nil {
				return err
			}
			printWiFi(stdout, st)
			return nil
		}},
		"scan": {0, func(cam *camera, _ []string) error {
			cam.client.Timeout = time.Minute
			var list []api.ScannedNetwork
			if err := cam.do("GET", "/api/v1/network/wifi/scan", nil, &list); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%-32s %7s %7s  %s\n", "SSID", "SIGNAL", "CHANNEL", "SECURITY")
			for _, n := range list {
				ssid := n.SSID
				if n.SSIDHex != "" {
					ssid = "hex:" + n.SSIDHex
				}
				fmt.Fprintf(stdout, "%-32s %4d dBm %7d  %s\n", ssid, n.Signal, n.Channel, n.Security)
			}
			return nil
		}},
		"join": {1, func(cam *camera, args []string) error {
			req := api.JoinRequest{SSID: args[0], Security: network.Security(*security), Hidden: *hidden}
			if hexSSID, ok := strings.CutPrefix(req.SSID, "hex:"); ok {
				req.SSID, req.SSIDHex = "", hexSSID
			}
			if req.Security != network.Open {
				pass, err := readPassphrase(*passFile)
				if err != nil {
					return err
				}
				req.Passphrase = pass
			}
			cam.client.Timeout = 3 * time.Minute
			var st api.WiFiStatus
			if err := cam.do("POST", "/api/v1/network/wifi", req, &st.Status); err != nil {
				return err
			}
			printWiFi(stdout, st)
			return nil
		}},
		"setup": {0, func(cam *camera, _ []string) error {
			var ap api.SetupAccessPoint
			if err := cam.do("GET", "/api/v1/network/wifi/setup", nil, &ap); err != nil {
				return err
			}
			state := "opens in setup mode"
			if ap.Open {
				state = "open now"
			}
			fmt.Fprintf(stdout, "access point %s (WPA2, %s)\npassphrase   %s\n", ap.SSID, state, ap.Passphrase)
			return nil
		}},
		"forget": {0, func(cam *camera, _ []string) error {
			if err := cam.do("DELETE", "/api/v1/network/wifi", nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "forgotten")
			return nil
		}},
		"code": {0, func(cam *camera, _ []string) error {
			return wifiCode(cam, *wait, stdout)
		}},
	}, args, stderr)
}

// wifiCode opens the window in which the camera reads a Wi-Fi QR code
// and, with wait, follows it until it closes.
func wifiCode(cam *camera, wait bool, stdout io.Writer) error {
	var cs network.CodeStatus
	if err := cam.do("POST", "/api/v1/network/wifi/code", struct{}{}, &cs); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "show the Wi-Fi QR code to the camera's lens (until %s)\n", cs.Until.Local().Format(time.TimeOnly))
	if !wait {
		return nil
	}
	for cs.State == network.CodeScanning || cs.State == network.CodeJoining {
		time.Sleep(wifiPoll)
		var st api.WiFiStatus
		if err := cam.do("GET", "/api/v1/network/wifi", nil, &st); err != nil {
			return err
		}
		if st.Code == nil {
			return errors.New("the camera lost the code window")
		}
		cs = *st.Code
	}
	switch cs.State {
	case network.CodeJoined:
		fmt.Fprintf(stdout, "joined %s\n", cs.SSID)
		return nil
	case network.CodeFailed:
		return fmt.Errorf("%s: %s (the old network stays)", cs.SSID, cs.Error)
	default:
		return fmt.Errorf("no Wi-Fi code read (%s)", cs.State)
	}
}

// readPassphrase reads the first line of path ("-": standard input).
func readPassphrase(path string) (string, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no passphrase read (give --passphrase-file, or the passphrase on standard input)")
	}
	return line, nil
}

func printWiFi(w io.Writer, st api.WiFiStatus) {
	fmt.Fprintf(w, "state        %s\n", st.State)
	if st.SSID != "" {
		fmt.Fprintf(w, "network      %s (%s)\n", st.SSID, st.Security)
	}
	if st.Signal != 0 {
		fmt.Fprintf(w, "signal       %d dBm, channel %d\n", st.Signal, st.Channel)
	}
	if st.Address != "" {
		fmt.Fprintf(w, "address      %s\n", st.Address)
	}
	fmt.Fprintf(w, "saved        %v\n", st.Saved)
	if st.Code != nil && st.Code.State != network.CodeIdle {
		fmt.Fprintf(w, "code window  %s %s\n", st.Code.State, st.Code.SSID)
	}
}
