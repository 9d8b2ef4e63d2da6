package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/durable"
)

// credential is what pairing left camctl with for one camera.
type credential struct {
	DeviceID    string `json:"device_id"`
	Addr        string `json:"addr"`
	Fingerprint string `json:"fingerprint"`
	Token       string `json:"token"`
	Role        string `json:"role"`
	UserID      string `json:"user_id"`
	Name        string `json:"name"`
}

// store is the credentials file (0600): every camera camctl paired with.
type store struct {
	path    string
	Default string                 `json:"default"`
	Devices map[string]*credential `json:"devices"`
}

func defaultStore() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "camctl", "credentials.json")
}

func loadStore(path string) (*store, error) {
	s := &store{path: path, Devices: map[string]*credential{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("credentials file %s is damaged: %w", path, err)
	}
	if s.Devices == nil {
		s.Devices = map[string]*credential{}
	}
	return s, nil
}

func (s *store) save() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	return durable.WriteFile(s.path, b, 0o600)
}

// camera is a connection to a paired camera.
type camera struct {
	cred   *credential
	client *http.Client
}

// cameraFlags are the flags every verb that talks to a camera takes.
type cameraFlags struct {
	store, device, addr *string
}

func addCameraFlags(fs *flag.FlagSet) cameraFlags {
	return cameraFlags{
		store:  fs.String("store", defaultStore(), "credentials `file`"),
		device: fs.String("device", "", "camera `ID` (default: the last one paired)"),
		addr:   fs.String("addr", "", "camera `HOST:PORT` (default: the address remembered at pairing)"),
	}
}

// openCamera adds the camera flags to a verb's own, parses args with
// them and opens the camera they name. On a failure, said on stderr, it
// returns no camera and the exit code.
func openCamera(fs *flag.FlagSet, args []string, stderr io.Writer) (*camera, int) {
	fs.SetOutput(stderr)
	cf := addCameraFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, 2
	}
	cam, err := cf.open()
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return nil, 1
	}
	return cam, 0
}

// open finds the credential for the chosen camera.
func (f cameraFlags) open() (*camera, error) {
	s, err := loadStore(*f.store)
	if err != nil {
		return nil, err
	}
	id := *f.device
	if id == "" {
		id = s.Default
	}
	c := s.Devices[id]
	if c == nil {
		if len(s.Devices) == 0 {
			return nil, fmt.Errorf("not paired with any camera yet: run camctl pair PAYLOAD (store %s)", s.path)
		}
		var ids []string
		for k := range s.Devices {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		return nil, fmt.Errorf("no camera %q in %s (paired: %s)", id, s.path, strings.Join(ids, ", "))
	}
	cc := *c
	if *f.addr != "" {
		cc.Addr = *f.addr
	}
	client, err := pinnedClient(cc.Fingerprint)
	if err != nil {
		return nil, err
	}
	return &camera{cred: &cc, client: client}, nil
}

func (c *camera) url(path string) string { return "https://" + c.cred.Addr + path }

// header carries the credential.
func (c *camera) header() http.Header {
	return http.Header{"Authorization": {"Bearer " + c.cred.Token}}
}

// do makes an API request; out, if not nil, receives the JSON answer.
func (c *camera) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url(path), rd)
	if err != nil {
		return err
	}
	req.Header = c.header()
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// pinnedClient trusts exactly one certificate: the one whose SHA-256
// fingerprint the pairing code carried. A different certificate fails the
// TLS handshake, before any request (and any secret) is sent.
func pinnedClient(fingerprint string) (*http.Client, error) {
	fingerprint = strings.ToLower(strings.ReplaceAll(fingerprint, ":", ""))
	want, err := hex.DecodeString(fingerprint)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("fingerprint %q is not a SHA-256 in hex", fingerprint)
	}
	cfg := pairing.PinnedTLS(want)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}, nil
}
