package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
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
  camctl users keys revoke KEY-ID
`

func users(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keys" {
		return userKeys(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("camctl users", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	role := fs.String("role", "viewer", "role of the invited user: viewer or owner")
	valid := fs.String("valid", "24h", "how long the invitation can be used (at most 168h, 7 days)")
	access := fs.String("access", "", "how long the invited user may watch (default: until revoked)")
	png := fs.String("png", "", "also write the invitation's QR code to this PNG `file`")
	return runVerb(fs, usersUsage, map[string]verb{
		"list": {0, func(cam *camera, _ []string) error {
			var us []user
			if err := cam.do("GET", "/api/v1/users", nil, &us); err != nil {
				return err
			}
			return printList(stdout, *asJSON, us, "ID\tNAME\tROLE\tPAIRED\tEXPIRES", func(u user) []string {
				exp := "-"
				if !u.Expires.IsZero() {
					exp = u.Expires.Local().Format(time.DateTime)
				}
				return []string{u.ID, u.Name, u.Role, u.Created.Local().Format(time.DateTime), exp}
			})
		}},
		"invite": {0, func(cam *camera, _ []string) error {
			var inv struct {
				Payload string `json:"payload"`
				Link    string `json:"link"`
			}
			if err := cam.do("POST", "/api/v1/users/invite", map[string]string{"role": *role, "valid": *valid, "access": *access}, &inv); err != nil {
				return err
			}
			q, err := qrcode.New(inv.Payload, qrcode.Medium)
			if err == nil && *png != "" {
				// The invitation is a one-time secret: owner-only.
				var b []byte
				if b, err = q.PNG(512); err == nil {
					err = durable.WriteFile(*png, b, 0o600)
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprint(stdout, q.ToSmallString(false))
			fmt.Fprintf(stdout, "one-time invitation (%s), valid %s:\n  %s\nor open in a browser:\n  %s\n", *role, *valid, inv.Payload, inv.Link)
			return nil
		}},
		"rename": {2, func(cam *camera, args []string) error {
			return cam.do("PATCH", "/api/v1/users/"+url.PathEscape(args[0]), map[string]string{"name": args[1]}, nil)
		}},
		"revoke": {1, func(cam *camera, args []string) error {
			return cam.do("DELETE", "/api/v1/users/"+url.PathEscape(args[0]), nil, nil)
		}},
		"invitations": {0, func(cam *camera, _ []string) error {
			var list []pairing.Invitation
			if err := cam.do("GET", "/api/v1/users/invitations", nil, &list); err != nil {
				return err
			}
			return printInvitations(stdout, list, *asJSON)
		}},
		"cancel": {1, func(cam *camera, args []string) error {
			if err := cam.do("DELETE", "/api/v1/users/invitations/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "invitation %s cancelled\n", args[0])
			return nil
		}},
	}, args, stderr)
}

// printInvitations prints the invitations not used yet: a table, or
// JSON.
func printInvitations(w io.Writer, list []pairing.Invitation, asJSON bool) error {
	return printList(w, asJSON, list, "ID\tROLE\tBY\tCREATED\tEXPIRES\tACCESS", func(inv pairing.Invitation) []string {
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
		return []string{inv.ID, inv.Role.String(), by, created, inv.Expires.Local().Format(time.DateTime), access}
	})
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
	asJSON := fs.Bool("json", false, "print JSON")
	forName := fs.String("for", "", "the paired user (name or ID) or the device (an NVR, home-assistant) the key is for")
	scope := fs.String("scope", pairing.ScopeView, "what the key may do: view (live video, audio, snapshots)")
	return runVerb(fs, usersUsage, map[string]verb{
		"add": {0, func(cam *camera, _ []string) error {
			if *forName == "" {
				return errUsage
			}
			var k keyAnswer
			if err := cam.do("POST", "/api/v1/keys", map[string]string{"for": *forName, "scope": *scope}, &k); err != nil {
				return err
			}
			if *asJSON {
				printJSON(stdout, k)
				return nil
			}
			fmt.Fprintf(stdout, "stream key %s for %s (%s); its secret is shown only now:\n", k.ID, k.For, k.Scope)
			fmt.Fprintf(stdout, "  user name:  %s\n  password:   %s\n  bearer:     %s\n", k.ID, k.Secret, k.Token)
			if k.RTSP != "" {
				fmt.Fprintf(stdout, "  rtsp:       %s\n", k.RTSP)
			}
			return nil
		}},
		"list": {0, func(cam *camera, _ []string) error {
			var list []pairing.Key
			if err := cam.do("GET", "/api/v1/keys", nil, &list); err != nil {
				return err
			}
			return printList(stdout, *asJSON, list, "ID\tFOR\tUSER\tSCOPE\tCREATED", func(k pairing.Key) []string {
				user := k.User
				if user == "" {
					user = "- (a device)"
				}
				return []string{k.ID, k.For, user, k.Scope, k.Created.Local().Format(time.DateTime)}
			})
		}},
		"revoke": {1, func(cam *camera, args []string) error {
			if err := cam.do("DELETE", "/api/v1/keys/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "stream key %s revoked\n", args[0])
			return nil
		}},
	}, args, stderr)
}
