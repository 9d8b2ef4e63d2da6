// Command camctl is camd's companion client: what the phone app does, for
// tests, scripts, installers and people without the app. See README.md.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `camctl: talk to a camd camera

usage:
  camctl discover [--timeout 1s] [--json] [--onvif] [--watch] [--interface NAMES]
  camctl pair [--addr HOST:PORT] [--name NAME] PAYLOAD
  camctl view [--seconds N] [--video F.h264] [--audio F.ogg] [--from TIME [--to TIME]]
  camctl users list|invite|rename|revoke|invitations|cancel|keys add --for NAME|keys list|keys revoke ID
  camctl settings get|set KEY=VALUE|reset KEY
  camctl recordings list|export|status|delete|trigger [--from TIME] [--to TIME] [--out F.mp4]
  camctl snapshot [--out F.jpg] [--save] | list | get ID | delete ID
  camctl storage status|check|format [--card DEVICE]
  camctl update status|check|apply [VERSION]
  camctl webhooks list|add [--types T] URL|test ID|log ID|remove ID
  camctl wifi status|scan|join SSID|forget|code
  camctl logs [--level LEVEL] [--since TIME] [--follow] [--json]
  camctl crashes list|show ID|send ID|delete ID
  camctl cameras list|discovered [--window 2s] [--json]|add CODE|add-rtsp URL|add-onvif HOST:PORT|set ID|remove ID
  camctl call watch|ring|answer [--talk F.wav|--tone HZ] [--listen F.wav|F.ogg] [--seconds N]|decline [--busy] [CALL]|hangup [CALL]

Verbs that talk to a camera take --store FILE (credentials, 0600),
--device ID (default: the last camera paired) and --addr HOST:PORT.
Flags go before or after the verb and its arguments.
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run runs one command. Everything it prints goes through a
// terminalWriter: much of it comes from the network.
func run(args []string, stdout, stderr io.Writer) int {
	return runCommand(args, newTerminalWriter(stdout), newTerminalWriter(stderr))
}

func runCommand(args []string, stdout, stderr io.Writer) int {
	args = verbFirst(args)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "discover":
		return discover(args[1:], stdout, stderr)
	case "pair":
		return pair(args[1:], stdout, stderr)
	case "view":
		return view(args[1:], stdout, stderr)
	case "users":
		return users(args[1:], stdout, stderr)
	case "settings":
		return settingsCmd(args[1:], stdout, stderr)
	case "recordings":
		return recordingsCmd(args[1:], stdout, stderr)
	case "snapshot":
		return snapshotCmd(args[1:], stdout, stderr)
	case "storage":
		return storageCmd(args[1:], stdout, stderr)
	case "update":
		return updateCmd(args[1:], stdout, stderr)
	case "webhooks":
		return webhooksCmd(args[1:], stdout, stderr)
	case "wifi":
		return wifiCmd(args[1:], stdout, stderr)
	case "logs":
		return logsCmd(args[1:], stdout, stderr)
	case "crashes":
		return crashesCmd(args[1:], stdout, stderr)
	case "call":
		return callCmd(args[1:], stdout, stderr)
	case "cameras":
		return camerasCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "camctl: unknown command %q\n%s", args[0], usage)
	return 2
}
