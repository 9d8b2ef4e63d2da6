package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/discovery/lan"
	"github.com/camd-project/camd/discovery/netnstest"
	"github.com/camd-project/camd/discovery/wsd"
)

// camctlIn runs camctl inside namespace ns and returns its stdout.
func camctlIn(t testing.TB, ctx context.Context, ns string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, filepath.Join(bin, "camctl")}, args...)...)
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

// TestNVRListsDiscoveredCameras: an NVR (camd) in namespace B, a camd
// camera and an ONVIF camera of another make in namespace A. `camctl
// cameras discovered` through the NVR lists the two, the camd one once
// (it answers mDNS and WS-Discovery) and unpaired, not the NVR itself;
// once its owner pairs the camera, it is listed as paired.
func TestNVRListsDiscoveredCameras(t *testing.T) {
	netnstest.Need(t)
	p := netnstest.NewPair(t)
	cam := startInNetns(t, p.A, "--config", writeConfig(t, "name: Front Door\n"))
	nvr := startInNetns(t, p.B, "--config", writeConfig(t, "name: NVR\n"))
	waitLog(t, cam, "discovery: answering WS-Discovery probes")
	camID, nvrID := cam.deviceID(t), nvr.deviceID(t)
	store := pairIn(t, p.B, nvr, net.JoinHostPort(p.AddrB, nvr.port(t)))

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

	// Ask the NVR, 2 s at a time, until ok accepts the list (the camera
	// answers once it has probed for its name), for at most 30 s.
	discovered := func(ok func([]lan.Camera) bool) []lan.Camera {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			out, err := camctlIn(t, ctx, p.B, "cameras", "discovered", "--json", "--store", store)
			cancel()
			if err != nil {
				t.Fatalf("camctl cameras discovered: %v\n%s%s", err, out, err.(*exec.ExitError).Stderr)
			}
			var ans api.DiscoveredAnswer
			if err := json.Unmarshal([]byte(out), &ans); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if ok(ans.Cameras) || time.Now().After(deadline) {
				t.Logf("NVR listed (%d ms, on %v): %s", ans.WindowMs, ans.Interfaces, out)
				return ans.Cameras
			}
		}
	}
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
	pairIn(t, p.A, cam, net.JoinHostPort(p.AddrA, cam.port(t)))
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
	out, err := camctlIn(t, ctx, p.B, "cameras", "discovered", "--store", store)
	if err != nil || !strings.Contains(out, "KIND") {
		t.Errorf("table: %v\n%s", err, out)
	}
	t.Logf("camctl cameras discovered:\n%s", out)
}
