package nvr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/camd-project/camd/device/pairing"
)

// paired is what pairing with a camd camera gives the NVR.
type paired struct {
	DeviceID string
	Addr     string
	Secret   secret
	Role     string
}

// camdClient reaches a camd camera over HTTPS, its certificate pinned.
func camdClient(fingerprint []byte, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	tr := &http.Transport{TLSClientConfig: pairing.PinnedTLS(fingerprint), DialContext: dial}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// pairCamd runs the pairing exchange with the camera that made the
// invitation code, as camctl pair does: the camera's certificate is
// pinned by the code, the NVR proves it holds the code's secret and
// registers as name.
func pairCamd(ctx context.Context, code, addr, name string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (paired, error) {
	p, err := pairing.Parse(code)
	if err != nil {
		return paired{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if p.Kind != pairing.Invite {
		return paired{}, fmt.Errorf("%w: the code is a camera's setup code, not an invitation from its owner", ErrBadRequest)
	}
	if addr == "" {
		if !p.Host.IsValid() {
			return paired{}, fmt.Errorf("%w: the code carries no address: give one", ErrBadRequest)
		}
		addr = p.Host.String()
	}
	client := camdClient(p.Fingerprint[:], dial)
	defer client.CloseIdleConnections()
	inviteID := pairing.InviteID(p.Secret[:])
	var st struct {
		Nonce    []byte `json:"nonce"`
		DeviceID string `json:"device_id"`
	}
	if err := postJSON(ctx, client, addr, "/api/v1/pair/start", map[string]string{"invite_id": inviteID}, &st); err != nil {
		return paired{}, err
	}
	if st.DeviceID != p.DeviceIDString() {
		return paired{}, fmt.Errorf("%w: the camera at %s is %s, not the camera of this code", ErrRefused, addr, st.DeviceID)
	}
	var done struct {
		Role     string `json:"role"`
		Token    string `json:"token"`
		DeviceID string `json:"device_id"`
	}
	req := map[string]any{"nonce": st.Nonce, "name": name, "proof": pairing.Proof(p.Secret[:], st.DeviceID, st.Nonce, name), "invite_id": inviteID}
	if err := postJSON(ctx, client, addr, "/api/v1/pair/finish", req, &done); err != nil {
		return paired{}, err
	}
	if done.Token == "" {
		return paired{}, fmt.Errorf("%w: the camera answered no credential", ErrRefused)
	}
	return paired{DeviceID: done.DeviceID, Addr: addr, Role: done.Role,
		Secret: secret{Token: done.Token, Fingerprint: p.Fingerprint[:]}}, nil
}

// postJSON posts body to the camera and decodes its answer into out.
// A refusal (4xx) is ErrRefused; no answer is ErrUnreachable.
func postJSON(ctx context.Context, client *http.Client, addr, path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "pinned fingerprint") {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(ans, &e)
		return fmt.Errorf("%w: %s: %s", ErrRefused, resp.Status, e.Error)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%w: %s", ErrUnreachable, resp.Status)
	}
	if err := json.Unmarshal(ans, out); err != nil {
		return errors.Join(ErrRefused, fmt.Errorf("nvr: the camera's answer: %w", err))
	}
	return nil
}

// ErrNoSnapshot: the camera gives no snapshot (not a camd camera).
var ErrNoSnapshot = errors.New("nvr: the camera gives no snapshot")

// Snapshot asks a camd camera for a JPEG of its picture
// (GET /api/v1/snapshot, with the NVR's credential); other cameras are
// ErrNoSnapshot.
func (m *Manager) Snapshot(ctx context.Context, id string) ([]byte, error) {
	m.mu.Lock()
	e, ok := m.cameras[id]
	var rec record
	if ok {
		rec = e.rec
	}
	m.mu.Unlock()
	switch {
	case !ok:
		return nil, ErrNotFound
	case rec.Camera.State == Removed:
		return nil, ErrRemoved
	case rec.Camera.Kind != KindCamd:
		return nil, ErrNoSnapshot
	}
	client := camdClient(rec.Secret.Fingerprint, nil)
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+rec.Camera.Address+"/api/v1/snapshot", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+rec.Secret.Token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: %s", ErrRefused, resp.Status)
	case resp.StatusCode == http.StatusNotImplemented:
		return nil, fmt.Errorf("%w: the camera takes none (%s)", ErrNoSnapshot, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: snapshot: %s", ErrUnreachable, resp.Status)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return b, nil
}
