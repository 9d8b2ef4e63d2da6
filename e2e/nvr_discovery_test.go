package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/discovery/lan"
	"github.com/camd-project/camd/discovery/netnstest"
	"github.com/camd-project/camd/discovery/wsd"
)

// camctlIn runs camctl inside namespace ns ("": the host's) and returns
// its stdout.
func camctlIn(t testing.TB, ctx context.Context, ns string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, filepath.Join(bin, "camctl")}, args...)...)
	if ns == "" {
		cmd = exec.CommandContext(ctx, filepath.Join(bin, "camctl"), args...)
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: []byte(errb.String())}
	}
	return out.String(), nil
}

// pairIn pairs a camctl running in namespace ns with d, reached at addr,
// and returns camctl's credentials file.
func pairIn(t testing.TB, ns string, d *daemon, addr string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "camd"), "qr", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("camd qr: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	store := filepath.Join(t.TempDir(), "credentials.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := camctlIn(t, ctx, ns, "pair", "--store", store, "--addr", addr, "--name", "e2e", lines[len(lines)-1]); err != nil {
		t.Fatalf("camctl pair: %v\n%s%s", err, out, err.(*exec.ExitError).Stderr)
	}
	return store
}

// httpIn is an HTTPS client (no certificate check) whose connections
// are opened inside namespace ns.
func httpIn(ns string) *http.Client {
	c := insecureClient()
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := netnstest.Do(ns, func() (err error) {
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
	return c
}

// TestNVRListsDiscoveredCameras: an NVR (camd) in namespace B; in
// namespace A a camd camera (at a second address of A's) and a camera
// of another make (an ONVIF responder and an RTSP server at A's first
// address). `camctl cameras discovered` through the NVR lists the two,
// the camd one once (it answers mDNS and WS-Discovery) and unpaired, not
// the NVR itself; once its owner pairs the camera, it is listed as
// paired. The NVR then adds the camd camera by the invitation its owner
// made and the other by its RTSP URL: each added one leaves the list
// (the camd camera by its device ID, the other by its address), both
// are online and recorded. The camd camera's owner revokes the NVR: it
// is unauthorized, with an event, and not tried again every second.
func TestNVRListsDiscoveredCameras(t *testing.T) {
	netnstest.Need(t, "ffmpeg")
	p := netnstest.NewPair(t)
	// The camd camera at an address of its own: the NVR leaves an added
	// camera of another make out by its address.
	addrA2 := strings.TrimSuffix(p.AddrA, ".1") + ".3"
	if out, err := exec.Command("ip", "-n", p.A, "addr", "add", addrA2+"/24", "dev", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v\n%s", err, out)
	}
	cam := &daemon{t: t, data: t.TempDir()}
	cam.start(t, netnstest.Command(p.A, filepath.Join(bin, "camd"), runArgs(cam.data, addrA2+":0", "--config", writeConfig(t, "name: Front Door\n"))...), 30*time.Second)
	nvr := startInNetns(t, p.B, "--config", writeConfig(t, "name: NVR\n"))
	nvrAddr := net.JoinHostPort(p.AddrB, nvr.port(t))

	// The other make's stream: an RTSP camera at A's first address.
	var l net.Listener
	if err := netnstest.Do(p.A, func() (err error) {
		l, err = net.Listen("tcp", p.AddrA+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rtspCam := startLoopCameras(t, fixture(t, t.TempDir(), "320x240", 15, 4, 15, "300k", "baseline"), 15, 1, l)
	waitLog(t, cam, "discovery: answering WS-Discovery probes")
	camID, nvrID := cam.deviceID(t), nvr.deviceID(t)
	nvr.store = pairIn(t, p.B, nvr, nvrAddr)

	porch := "urn:uuid:0a0b0c0d-0000-4000-8000-00000000abcd"
	var r *wsd.Responder
	if err := netnstest.Do(p.A, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		r, err = wsd.Listen(wsd.Options{Interfaces: []net.Interface{*ifi}, Target: func(int, bool) wsd.Target {
			return wsd.Target{Endpoint: porch, Types: []xml.Name{wsd.NetworkVideoTransmitter},
				Scopes: []string{wsd.ScopeName + "Porch%20Cam", wsd.ScopeHardware + "IPC-G5"},
				XAddrs: []string{"http://" + p.AddrA + ":8000/onvif/device_service"}, MetadataVersion: 1}
		}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	box := &nvrBox{daemon: nvr, ns: p.B, at: nvrAddr}
	discovered := func(ok func([]lan.Camera) bool) []lan.Camera { t.Helper(); return box.discovered(t, ok) }
	find := func(cams []lan.Camera, match func(lan.Camera) bool) (lan.Camera, bool) {
		i := slices.IndexFunc(cams, match)
		if i < 0 {
			return lan.Camera{}, false
		}
		return cams[i], true
	}
	isCam := func(c lan.Camera) bool { return c.ID == camID }
	isPorch := func(c lan.Camera) bool { return c.Endpoint == porch }
	cams := discovered(func(cams []lan.Camera) bool {
		c, ok := find(cams, isCam)
		_, porch := find(cams, isPorch)
		return ok && len(c.Via) == 2 && porch
	})
	c, _ := find(cams, isCam)
	if len(cams) != 2 || c.Kind != lan.Camd || c.Name != "Front Door" || c.Paired == nil || *c.Paired ||
		!slices.Contains(c.Via, lan.ViaWSD) || c.Endpoint != wsd.EndpointFor(camID) {
		t.Fatalf("NVR listed %+v; want Front Door (camd, unpaired, by mDNS and WS-Discovery) and Porch Cam", cams)
	}
	if o, _ := find(cams, isPorch); o.Kind != lan.ONVIF || o.Name != "Porch Cam" || o.Paired != nil {
		t.Errorf("porch camera: %+v", o)
	}
	if _, self := find(cams, func(c lan.Camera) bool { return c.ID == nvrID || c.Endpoint == wsd.EndpointFor(nvrID) }); self {
		t.Errorf("the NVR lists itself: %+v", cams)
	}

	// The camera's owner pairs it (from A): the NVR sees it paired.
	owner := pairIn(t, p.A, cam, net.JoinHostPort(addrA2, cam.port(t)))
	cams = discovered(func(cams []lan.Camera) bool {
		c, ok := find(cams, isCam)
		return ok && c.Paired != nil && *c.Paired
	})
	if c, ok := find(cams, isCam); !ok || c.Paired == nil || !*c.Paired {
		t.Errorf("after pairing, the NVR lists %+v", cams)
	}

	// The table, as a person reads it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := box.camctl(t, ctx, "discovered")
	if err != nil || !strings.Contains(out, "KIND") {
		t.Errorf("table: %v\n%s", err, out)
	}
	t.Logf("camctl cameras discovered:\n%s", out)

	// The owner invites the NVR (a viewer invitation, from A); the NVR
	// adds the camera by the code: it leaves the list, the porch camera
	// stays.
	a := box.add(t, ctx, "add", invitation(t, p.A, owner, "CAMD1:"))
	cams = discovered(func(cams []lan.Camera) bool {
		_, c := find(cams, isCam)
		_, o := find(cams, isPorch)
		return !c && o
	})
	if _, c := find(cams, isCam); c || len(cams) != 1 {
		t.Errorf("after adding the camd camera, the NVR lists %+v; want Porch Cam alone", cams)
	}
	// The porch camera added by its RTSP URL (at its address): the list
	// is empty.
	ro := box.add(t, ctx, "add-rtsp", rtspCam.url(0))
	cams = discovered(func(cams []lan.Camera) bool { return len(cams) == 0 })
	if len(cams) != 0 {
		t.Errorf("after adding both, the NVR lists %+v", cams)
	}

	// Both recorded.
	recorded := func(id string) float64 {
		var tl timelineAnswer
		box.getJSON(t, "/api/v1/cameras/"+id+"/recordings?from=-2m", &tl)
		return tl.Recorded
	}
	for deadline := time.Now().Add(30 * time.Second); recorded(a.ID) < 2 || recorded(ro.ID) < 2; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("recorded %.1f s of the camd camera, %.1f s of the RTSP one", recorded(a.ID), recorded(ro.ID))
		}
	}

	// The owner revokes the NVR's user on the camera: unauthorized, with
	// an event, and not tried again every second.
	out, err = camctlIn(t, ctx, p.A, "users", "list", "--json", "--store", owner)
	if err != nil {
		t.Fatalf("camctl users list: %v\n%s", err, out)
	}
	var users []struct{ ID, Name string }
	json.Unmarshal([]byte(out), &users)
	i := slices.IndexFunc(users, func(u struct{ ID, Name string }) bool { return u.Name == "camd NVR NVR" })
	if i < 0 {
		t.Fatalf("the NVR is not among the camera's users: %s", out)
	}
	if out, err := camctlIn(t, ctx, p.A, "users", "revoke", "--store", owner, users[i].ID); err != nil {
		t.Fatalf("camctl users revoke: %v\n%s", err, out)
	}
	revoked := time.Now()
	var got nvrCamera
	for deadline := time.Now().Add(20 * time.Second); got.State != "unauthorized"; time.Sleep(200 * time.Millisecond) {
		box.getJSON(t, "/api/v1/cameras/"+a.ID, &got)
		if time.Now().After(deadline) {
			t.Fatalf("not unauthorized 20 s after the revocation: %+v", got)
		}
	}
	t.Logf("unauthorized after %s: %s", time.Since(revoked).Round(time.Millisecond), got.LastError)
	var events []struct{ Camera string }
	box.getJSON(t, "/api/v1/events?type=camera.unauthorized", &events)
	if !slices.ContainsFunc(events, func(e struct{ Camera string }) bool { return e.Camera == a.ID }) {
		t.Errorf("no camera.unauthorized event for %s: %+v", a.ID, events)
	}
	// An offline camera is tried again after 1 s, 2 s, …; an
	// unauthorized one after 5 minutes.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		var now nvrCamera
		box.getJSON(t, "/api/v1/cameras/"+a.ID, &now)
		if now.Attempts != got.Attempts || now.State != "unauthorized" {
			t.Fatalf("tried again: %+v, was %+v", now, got)
		}
	}
	var rc nvrCamera
	box.getJSON(t, "/api/v1/cameras/"+ro.ID, &rc)
	if rc.State != "online" {
		t.Errorf("the RTSP camera went with the camd one: %+v", rc)
	}
}
