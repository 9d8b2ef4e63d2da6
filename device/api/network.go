package api

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/camd-project/camd/network"
)

// Network is Wi-Fi setup (docs/network.md): the owner scans, joins a
// network (a join that fails keeps the old one and says why), reads its
// status, forgets it, and opens the window in which the camera reads a
// Wi-Fi QR code shown to its lens. Credentials come only in a join's
// body over HTTPS from the owner; no answer carries them.
type Network struct {
	// Link is nil when camd manages no network.
	Link link // *network.Setup
	// Codes is nil when the source gives no raw pictures or the build
	// has no QR decoder (network.QRScan).
	Codes codeWindow // *network.CodeReader
	// Setup is nil without setup mode (network.setup: off).
	Setup setupMode // *network.Setup
}

// setupMode tells which access point setup mode opens.
type setupMode interface {
	AccessPoint() (network.SetupAP, error)
	Active() bool
}

// link is the link manager.
type link interface {
	Scan(ctx context.Context) ([]network.Network, error)
	Join(ctx context.Context, c network.Credentials) (network.Status, error)
	Status(ctx context.Context) (network.Status, error)
	Forget(ctx context.Context) error
}

// codeWindow reads Wi-Fi QR codes while the owner's window is open.
type codeWindow interface {
	Start() network.CodeStatus
	Stop()
	Status() network.CodeStatus
}

func (a *Network) routes() []Route {
	return []Route{
		{"GET /api/v1/network/wifi", Owner, a.handleStatus},
		{"GET /api/v1/network/wifi/scan", Owner, a.handleScan},
		{"POST /api/v1/network/wifi", Owner, a.handleJoin},
		{"DELETE /api/v1/network/wifi", Owner, a.handleForget},
		{"POST /api/v1/network/wifi/code", Owner, a.handleCodeStart},
		{"DELETE /api/v1/network/wifi/code", Owner, a.handleCodeStop},
		{"GET /api/v1/network/wifi/setup", Owner, a.handleSetupAP},
	}
}

// WiFiStatus is the body of GET /api/v1/network/wifi: the link, and the
// Wi-Fi code window (absent without raw pictures).
type WiFiStatus struct {
	network.Status
	Code *network.CodeStatus `json:"code,omitempty"`
	// LastJoin is how the last join ended: a phone in setup mode, cut
	// off by the join, reads here why it failed.
	LastJoin *network.JoinResult `json:"last_join,omitempty"`
}

// lastJoiner remembers how the last join ended (*network.Setup).
type lastJoiner interface {
	LastJoin() *network.JoinResult
}

// ScannedNetwork is one entry of GET /api/v1/network/wifi/scan; ssid_hex
// carries an SSID that is not UTF-8.
type ScannedNetwork struct {
	network.Network
	SSIDHex string `json:"ssid_hex,omitempty"`
}

// JoinRequest is the body of POST /api/v1/network/wifi. ssid_hex, in
// place of ssid, names a network whose SSID is not UTF-8. security is
// open, psk, sae or psk+sae ("" : psk with a passphrase, open without).
type JoinRequest struct {
	SSID       string           `json:"ssid"`
	SSIDHex    string           `json:"ssid_hex,omitempty"`
	Security   network.Security `json:"security,omitempty"`
	Passphrase string           `json:"passphrase,omitempty"`
	Hidden     bool             `json:"hidden,omitempty"`
}

// JoinFailed is the body of a join that failed (422): why, as
// network.Reason (wrong_key, not_found, no_lease, timeout, rejected,
// credentials), and the link as it is, on the old network.
type JoinFailed struct {
	Error  string         `json:"error"`
	Reason string         `json:"reason,omitempty"`
	Status network.Status `json:"status"`
}

func (a *Network) ready(w http.ResponseWriter) bool {
	if a.Link == nil {
		jsonError(w, http.StatusServiceUnavailable, "network: camd manages no network here (network.wifi: off)")
		return false
	}
	return true
}

func (a *Network) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	st, err := a.Link.Status(r.Context())
	if err != nil {
		jsonError(w, http.StatusBadGateway, err.Error())
		return
	}
	ans := WiFiStatus{Status: st}
	if lj, ok := a.Link.(lastJoiner); ok {
		ans.LastJoin = lj.LastJoin()
	}
	if a.Codes != nil {
		c := a.Codes.Status()
		ans.Code = &c
	}
	writeJSON(w, ans)
}

func (a *Network) handleScan(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	list, err := a.Link.Scan(r.Context())
	if err != nil {
		jsonError(w, http.StatusBadGateway, err.Error())
		return
	}
	ans := make([]ScannedNetwork, 0, len(list))
	for _, n := range list {
		s := ScannedNetwork{Network: n}
		if !utf8.ValidString(n.SSID) {
			s.SSIDHex = hex.EncodeToString([]byte(n.SSID))
		}
		ans = append(ans, s)
	}
	writeJSON(w, ans)
}

// handleJoin tries the network: 200 with the status once joined; 422
// with JoinFailed when it fails (the old network kept); 400 for
// credentials that cannot be used. The request must have come over TLS:
// the passphrase travels only on the paired HTTPS channel.
func (a *Network) handleJoin(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	if r.TLS == nil {
		jsonError(w, http.StatusForbidden, "network: credentials only over HTTPS")
		return
	}
	var req JoinRequest
	if !decode(w, r, &req) {
		return
	}
	c := network.Credentials{SSID: req.SSID, Security: req.Security, Passphrase: req.Passphrase, Hidden: req.Hidden}
	if req.SSIDHex != "" {
		b, err := hex.DecodeString(req.SSIDHex)
		if err != nil || req.SSID != "" {
			jsonError(w, http.StatusBadRequest, "network: ssid_hex is hex, in place of ssid")
			return
		}
		c.SSID = string(b)
	}
	if _, err := c.Check(); err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The join runs to its end (it has its own time limits) even when
	// the client goes: in setup mode the join itself cuts the phone off.
	st, err := a.Link.Join(context.WithoutCancel(r.Context()), c)
	switch {
	case err == nil:
		writeJSON(w, st)
	case errors.Is(err, network.ErrBusy):
		jsonError(w, http.StatusConflict, err.Error())
	default:
		now, _ := a.Link.Status(context.WithoutCancel(r.Context()))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		writeJSON(w, JoinFailed{Error: err.Error(), Reason: network.Reason(err), Status: now})
	}
}

// SetupAccessPoint is the body of GET /api/v1/network/wifi/setup: the
// access point setup mode has open (Open), or opens next.
type SetupAccessPoint struct {
	SSID       string `json:"ssid"`
	Passphrase string `json:"passphrase"`
	Open       bool   `json:"open"`
}

// handleSetupAP answers the setup access point's SSID and passphrase,
// which the owner's phone keeps: once pairing replaced the secret in the
// setup code, nothing else tells them (docs/network.md, "After
// pairing"). Over TLS only, as a join; 503 without setup mode.
func (a *Network) handleSetupAP(w http.ResponseWriter, r *http.Request) {
	if a.Setup == nil {
		jsonError(w, http.StatusServiceUnavailable, "network: no setup mode here (network.setup: off)")
		return
	}
	if r.TLS == nil {
		jsonError(w, http.StatusForbidden, "network: the setup access point only over HTTPS")
		return
	}
	ap, err := a.Setup.AccessPoint()
	if err != nil {
		jsonError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, SetupAccessPoint{SSID: ap.SSID, Passphrase: ap.Passphrase, Open: a.Setup.Active()})
}

func (a *Network) handleForget(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	if err := a.Link.Forget(r.Context()); err != nil {
		jsonError(w, http.StatusBadGateway, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleCodeStart opens the 2-minute window in which the camera reads a
// Wi-Fi QR code (202 with the window; follow it in GET
// /api/v1/network/wifi); 503 when the source gives no raw pictures.
// errNoCodeReader answers the Wi-Fi code window's routes on a camera
// without a code reader.
const errNoCodeReader = "network: this camera reads no Wi-Fi codes (its source gives no raw pictures, or the build has no QR decoder)"

func (a *Network) handleCodeStart(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if !a.ready(w) || !decode(w, r, &body) {
		return
	}
	if a.Codes == nil {
		jsonError(w, http.StatusServiceUnavailable, errNoCodeReader)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	writeJSON(w, a.Codes.Start())
}

func (a *Network) handleCodeStop(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	if a.Codes == nil {
		jsonError(w, http.StatusServiceUnavailable, errNoCodeReader)
		return
	}
	a.Codes.Stop()
	writeJSON(w, a.Codes.Status())
}
