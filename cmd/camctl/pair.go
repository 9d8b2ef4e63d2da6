package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/camd-project/camd/device/pairing"
)

type startAnswer struct {
	Nonce    []byte `json:"nonce"`
	DeviceID string `json:"device_id"`
}

type pairedAnswer struct {
	UserID   string `json:"user_id"`
	Role     string `json:"role"`
	Token    string `json:"token"`
	DeviceID string `json:"device_id"`
}

func pair(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camctl pair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storePath := fs.String("store", defaultStore(), "credentials `file`")
	addr := fs.String("addr", "", "camera `HOST:PORT` (default: the address in the pairing code)")
	host, _ := os.Hostname()
	name := fs.String("name", "camctl on "+host, "the `name` this client registers as")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: camctl pair [--addr HOST:PORT] [--name NAME] PAYLOAD")
		return 2
	}
	if err := doPair(fs.Arg(0), *addr, *name, *storePath, stdout); err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	return 0
}

func doPair(code, addr, name, storePath string, stdout io.Writer) error {
	p, err := pairing.Parse(code)
	if err != nil {
		return err
	}
	if addr == "" {
		if !p.Host.IsValid() {
			return fmt.Errorf("the pairing code carries no address: give --addr HOST:PORT")
		}
		addr = p.Host.String()
	}
	s, err := loadStore(storePath)
	if err != nil {
		return err
	}
	fp := fmt.Sprintf("%x", p.Fingerprint)
	client, err := pinnedClient(fp)
	if err != nil {
		return err
	}
	cam := &camera{cred: &credential{Addr: addr, Fingerprint: fp}, client: client}
	inviteID := ""
	if p.Kind == pairing.Invite {
		inviteID = pairing.InviteID(p.Secret[:])
	}
	var st startAnswer
	if err := cam.do("POST", "/api/v1/pair/start", map[string]string{"invite_id": inviteID}, &st); err != nil {
		return fmt.Errorf("pairing refused: %w", err)
	}
	if st.DeviceID != p.DeviceIDString() {
		return fmt.Errorf("the camera at %s is %s, not the camera of this code (%s)", addr, st.DeviceID, p.DeviceIDString())
	}
	var done pairedAnswer
	proof := pairing.Proof(p.Secret[:], st.DeviceID, st.Nonce, name)
	req := map[string]any{"nonce": st.Nonce, "name": name, "proof": proof, "invite_id": inviteID}
	if err := cam.do("POST", "/api/v1/pair/finish", req, &done); err != nil {
		return fmt.Errorf("pairing refused: %w", err)
	}
	s.Devices[done.DeviceID] = &credential{
		DeviceID: done.DeviceID, Addr: addr, Fingerprint: fp, Token: done.Token,
		Role: done.Role, UserID: done.UserID, Name: name,
	}
	s.Default = done.DeviceID
	if err := s.save(); err != nil {
		return fmt.Errorf("paired, but saving the credential failed: %w", err)
	}
	fmt.Fprintf(stdout, "paired with %s at %s as %s (%s)\n", done.DeviceID, addr, done.Role, name)
	return nil
}

// printJSON prints v indented.
func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(w, string(b))
}
