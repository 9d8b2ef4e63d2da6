package device

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/onvif"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/testenv"
)

// onvifCall posts one ONVIF action with a stream key's UsernameToken
// (PasswordDigest) to path on d's ONVIF port.
func onvifCall(t *testing.T, d *Daemon, path, id, secret, body string) (int, string) {
	t.Helper()
	code, b, err := onvifPost(d, path, id, secret, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, b
}

// onvifPost is onvifCall for another goroutine than the test's.
func onvifPost(d *Daemon, path, id, secret, body string) (int, string, error) {
	env := onvif.Envelope(onvif.SecurityHeader(id, secret, time.Now()), body)
	res, err := http.Post("http://"+d.onvif.ln.Addr().String()+path, "application/soap+xml", strings.NewReader(env))
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// TestRevokedKeyEndsONVIF: a stream key reads the device over ONVIF and
// holds a PullPoint subscription; revoked, its waiting PullMessages ends
// within a second and every call is refused.
func TestRevokedKeyEndsONVIF(t *testing.T) {
	cfg := rtspConfig(t)
	cfg.ONVIF.Listen = "127.0.0.1:0"
	d, _ := runningAt(t, cfg)
	ownerToken := owner(t, d)
	key := streamKey(t, d, ownerToken, "nvr")
	const info = `<GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/>`
	if code, b := onvifCall(t, d, onvif.DevicePath, key.ID, key.Secret, info); code != http.StatusOK || !strings.Contains(b, d.id.ID) {
		t.Fatalf("GetDeviceInformation with the key: %d %s", code, b)
	}
	if code, b := onvifCall(t, d, onvif.DevicePath, key.ID, key.Secret+"x", info); code != http.StatusBadRequest || !strings.Contains(b, "ter:NotAuthorized") {
		t.Errorf("a wrong secret: %d %s", code, b)
	}
	code, b := onvifCall(t, d, onvif.EventsPath, key.ID, key.Secret, `<CreatePullPointSubscription xmlns="http://www.onvif.org/ver10/events/wsdl"/>`)
	i := strings.Index(b, onvif.SubscriptionPath)
	if code != http.StatusOK || i < 0 {
		t.Fatalf("subscribe: %d %s", code, b)
	}
	sub := b[i : i+strings.Index(b[i:], "<")]
	// The pull waits up to 60 s; a message that comes first (the
	// synthetic camera's own motion) is taken and the pull made again, as
	// an NVR does, until the subscription ends.
	pulled := make(chan string, 1)
	go func() {
		for {
			_, b, err := onvifPost(d, sub, key.ID, key.Secret, `<PullMessages xmlns="http://www.onvif.org/ver10/events/wsdl"><Timeout>PT60S</Timeout><MessageLimit>10</MessageLimit></PullMessages>`)
			if err != nil || !strings.Contains(b, "PullMessagesResponse") {
				pulled <- b
				return
			}
		}
	}()
	testenv.Eventually(t, "the key's event subscription", func() bool {
		for _, s := range d.events.bus.Subscriptions() {
			if s.User == pairing.KeySubject(key.ID) {
				return true
			}
		}
		return false
	})

	if code, b := call(t, d, "DELETE", "/api/v1/keys/"+key.ID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", code, b)
	}
	select {
	case b := <-pulled:
		// A pull made again after the revocation is refused at the door.
		if !strings.Contains(b, "ter:InvalidSubscription") && !strings.Contains(b, "ter:NotAuthorized") {
			t.Errorf("the waiting pull after the revocation: %s", b)
		}
	case <-time.After(20 * time.Second): // far less than the pull's 60 s
		t.Fatal("the waiting pull still waits 20 s after the revocation")
	}
	if code, b := onvifCall(t, d, onvif.DevicePath, key.ID, key.Secret, info); code != http.StatusBadRequest || !strings.Contains(b, "ter:NotAuthorized") {
		t.Errorf("GetDeviceInformation with the revoked key: %d %s", code, b)
	}
}
