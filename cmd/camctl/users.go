package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/durable"
)

type user struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

const usersUsage = `usage:
  camctl users list [--json]
  camctl users invite [--role viewer|owner] [--valid 24h] [--access DURATION] [--png FILE]
  camctl users rename ID NAME
  camctl users revoke ID
  camctl users invitations [--json]
  camctl users cancel INVITATION-ID
  camctl users keys add --for NAME [--scope view] [--json]
  camctl users keys list [--json]
  camctl users keys revoke KEY-ID`

func users(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usersUsage)
		return 2
	}
	if args[0] == "keys" {
		return userKeys(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("camctl users "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addCameraFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	role := fs.String("role", "viewer", "role of the invited user: viewer or owner")
	valid := fs.String("valid", "24h", "how long the invitation can be used (at most 168h, 7 days)")
	access := fs.String("access", "", "how long the invited user may watch (default: until revoked)")
	png := fs.String("png", "", "also write the invitation's QR code to this PNG `file`")
	if err := parseFlags(fs, args[1:]); err != nil {
		return 2
	}
	cam, err := cf.open()
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	switch {
	case args[0] == "list" && fs.NArg() == 0:
		var us []user
		if err = cam.do("GET", "/api/v1/users", nil, &us); err == nil {
			if *asJSON {
				printJSON(stdout, us)
				return 0
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tPAIRED\tEXPIRES")
			for _, u := range us {
				exp := "-"
				if !u.Expires.IsZero() {
					exp = u.Expires.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Name, u.Role, u.Created.Local().Format(time.DateTime), exp)
			}
			tw.Flush()
		}
	case args[0] == "invite" && fs.NArg() == 0:
		var inv struct {
			Payload string `json:"payload"`
			Link    string `json:"link"`
		}
		err = cam.do("POST", "/api/v1/users/invite", map[string]string{"role": *role, "valid": *valid, "access": *access}, &inv)
		if err == nil {
			q, qerr := qrcode.New(inv.Payload, qrcode.Medium)
			if qerr == nil && *png != "" {
				// The invitation is a one-time secret: owner-only.
				var b []byte
				if b, qerr = q.PNG(512); qerr == nil {
					qerr = durable.WriteFile(*png, b, 0o600)
				}
			}
			if qerr != nil {
				err = qerr
				break
			}
			fmt.Fprint(stdout, q.ToSmallString(false))
			fmt.Fprintf(stdout, "one-time invitation (%s), valid %s:\n  %s\nor open in a browser:\n  %s\n", *role, *valid, inv.Payload, inv.Link)
		}
	case args[0] == "rename" && fs.NArg() == 2:
		err = cam.do("PATCH", "/api/v1/users/"+url.PathEscape(fs.Arg(0)), map[string]string{"name": fs.Arg(1)}, nil)
	case args[0] == "revoke" && fs.NArg() == 1:
		err = cam.do("DELETE", "/api/v1/users/"+url.PathEscape(fs.Arg(0)), nil, nil)
	case args[0] == "invitations" && fs.NArg() == 0:
		var list []pairing.Invitation
		if err = cam.do("GET", "/api/v1/users/invitations", nil, &list); err == nil {
			printInvitations(stdout, list, *asJSON)
		}
	case args[0] == "cancel" && fs.NArg() == 1:
		if err = cam.do("DELETE", "/api/v1/users/invitations/"+url.PathEscape(fs.Arg(0)), nil, nil); err == nil {
			fmt.Fprintf(stdout, "invitation %s cancelled\n", fs.Arg(0))
		}
	default:
		fmt.Fprintln(stderr, usersUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	return 0
}

// printInvitations prints the invitations not used yet: a table, or
// JSON.
func printInvitations(w io.Writer, list []pairing.Invitation, asJSON bool) {
	if asJSON {
		printJSON(w, list)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tBY\tCREATED\tEXPIRES\tACCESS")
	for _, inv := range list {
		by, created, access := "-", "-", "until revoked"
		switch {
		case inv.ByName != "":
			by = inv.ByName + " (" + inv.By + ")"
		case inv.By != "":
			by = inv.By
		}
		if !inv.Created.IsZero() {
			created = inv.Created.Local().Format(time.DateTime)
		}
		if inv.Access > 0 {
			access = inv.Access.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", inv.ID, inv.Role, by, created, inv.Expires.Local().Format(time.DateTime), access)
	}
	tw.Flush()
}

// keyAnswer is a new stream key as camd answers it: shown once.
type keyAnswer struct {
	pairing.KeyCredential
	RTSP string `json:"rtsp,omitempty"`
}

// userKeys runs `camctl users keys VERB`: stream keys for NVRs, Home
// Assistant and other standard clients. Flags may come before or after
// the verb and its argument.
func userKeys(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camctl users keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addCameraFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	forName := fs.String("for", "", "the paired user (name or ID) or the device (an NVR, home-assistant) the key is for")
	scope := fs.String("scope", pairing.ScopeView, "what the key may do: view (live video, audio, snapshots)")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, usersUsage)
		return 2
	}
	cam, err := cf.open()
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	switch {
	case pos[0] == "add" && len(pos) == 1 && *forName != "":
		var k keyAnswer
		if err = cam.do("POST", "/api/v1/keys", map[string]string{"for": *forName, "scope": *scope}, &k); err == nil {
			if *asJSON {
				printJSON(stdout, k)
				return 0
			}
			fmt.Fprintf(stdout, "stream key %s for %s (%s); its secret is shown only now:\n", k.ID, k.For, k.Scope)
			fmt.Fprintf(stdout, "  user name:  %s\n  password:   %s\n  bearer:     %s\n", k.ID, k.Secret, k.Token)
			if k.RTSP != "" {
				fmt.Fprintf(stdout, "  rtsp:       %s\n", k.RTSP)
			}
		}
	case pos[0] == "list" && len(pos) == 1:
		var list []pairing.Key
		if err = cam.do("GET", "/api/v1/keys", nil, &list); err == nil {
			if *asJSON {
				printJSON(stdout, list)
				return 0
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFOR\tUSER\tSCOPE\tCREATED")
			for _, k := range list {
				user := k.User
				if user == "" {
					user = "- (a device)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.For, user, k.Scope, k.Created.Local().Format(time.DateTime))
			}
			tw.Flush()
		}
	case pos[0] == "revoke" && len(pos) == 2:
		if err = cam.do("DELETE", "/api/v1/keys/"+url.PathEscape(pos[1]), nil, nil); err == nil {
			fmt.Fprintf(stdout, "stream key %s revoked\n", pos[1])
		}
	default:
		fmt.Fprintln(stderr, usersUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	return 0
}
