// Package whiptest is a WHIP endpoint (RFC 9725) for tests: pion answers
// each offer as an SFU would (receive only), on loopback, and counts the
// video frames of each session.
package whiptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Endpoint is a WHIP endpoint at URL that takes Token as its bearer
// token. OPTIONS answers 204 with ICE servers in Link headers, POST 201
// with the answer and the session's Location, DELETE ends a session; a
// wrong token gets 401.
type Endpoint struct {
	URL   string
	Token string
	// Links are the Link headers of OPTIONS.
	Links []string

	srv *httptest.Server

	mu       sync.Mutex
	pcs      map[int]*webrtc.PeerConnection
	n        int
	frames   map[int]int
	firstKey map[int]bool
	audio    map[int]int
	deleted  []int
	methods  []string
	wg       sync.WaitGroup
}

// New starts an endpoint over HTTP; Close stops it.
func New(token string) *Endpoint { return start(token, httptest.NewServer) }

// NewTLS starts an endpoint over HTTPS with a self-signed certificate
// (Certificate); Close stops it.
func NewTLS(token string) *Endpoint { return start(token, httptest.NewTLSServer) }

func start(token string, serve func(http.Handler) *httptest.Server) *Endpoint {
	e := &Endpoint{Token: token, pcs: map[int]*webrtc.PeerConnection{}, frames: map[int]int{}, firstKey: map[int]bool{}, audio: map[int]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/whip", e.serve)
	mux.HandleFunc("DELETE /whip/{id}", e.delete)
	e.srv = serve(mux)
	e.URL = e.srv.URL + "/whip"
	return e
}

// Certificate is the DER of an HTTPS endpoint's certificate.
func (e *Endpoint) Certificate() []byte { return e.srv.Certificate().Raw }

// Close ends every session and stops the endpoint.
func (e *Endpoint) Close() {
	e.srv.Close()
	e.Drop()
	e.wg.Wait()
}

// Drop ends every session without DELETE, as an SFU that restarts.
func (e *Endpoint) Drop() {
	e.mu.Lock()
	pcs := e.pcs
	e.pcs = map[int]*webrtc.PeerConnection{}
	e.mu.Unlock()
	for _, pc := range pcs {
		pc.Close()
	}
}

// Frames returns the complete video frames (RTP marker bits) that the
// n-th session (from 1) received, and whether its first was a keyframe.
func (e *Endpoint) Frames(n int) (int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.frames[n], e.firstKey[n]
}

// Audio returns the audio packets that the n-th session received.
func (e *Endpoint) Audio(n int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.audio[n]
}

// Deleted returns the sessions ended with DELETE.
func (e *Endpoint) Deleted() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.deleted...)
}

// Methods returns the methods of every request, in order.
func (e *Endpoint) Methods() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.methods...)
}

func (e *Endpoint) authorized(w http.ResponseWriter, r *http.Request) bool {
	e.mu.Lock()
	e.methods = append(e.methods, r.Method)
	e.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+e.Token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return false
	}
	return true
}

func (e *Endpoint) delete(w http.ResponseWriter, r *http.Request) {
	if !e.authorized(w, r) {
		return
	}
	id, _ := strconv.Atoi(r.PathValue("id"))
	e.mu.Lock()
	pc := e.pcs[id]
	delete(e.pcs, id)
	e.deleted = append(e.deleted, id)
	e.mu.Unlock()
	if pc != nil {
		pc.Close()
	}
	w.WriteHeader(http.StatusOK)
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	if !e.authorized(w, r) {
		return
	}
	switch r.Method {
	case http.MethodOptions:
		w.Header()["Link"] = e.Links
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	offer, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	pc, err := newPeerConnection()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	e.mu.Lock()
	e.n++
	id := e.n
	e.pcs[id] = pc
	e.mu.Unlock()
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			e.wg.Go(func() { e.count(id, tr) })
			return
		}
		e.wg.Go(func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				e.mu.Lock()
				e.audio[id]++
				e.mu.Unlock()
			}
		})
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
	}
	w.Header().Set("Location", "/whip/"+strconv.Itoa(id))
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, pc.LocalDescription().SDP)
}

// count counts a session's video frames by their RTP marker bits, and
// notes whether the first frame carries an IDR slice.
func (e *Endpoint) count(id int, tr *webrtc.TrackRemote) {
	key := false // the frame being received carries an IDR slice
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		key = key || carriesIDR(p)
		if !p.Marker {
			continue
		}
		e.mu.Lock()
		if e.frames[id] == 0 {
			e.firstKey[id] = key
		}
		e.frames[id]++
		e.mu.Unlock()
		key = false
	}
}

// carriesIDR reports whether an H.264 RTP payload (RFC 6184) holds an
// IDR slice: alone, in a STAP-A, or as the start of an FU-A.
func carriesIDR(p *rtp.Packet) bool {
	b := p.Payload
	if len(b) == 0 {
		return false
	}
	switch b[0] & 0x1f {
	case 5:
		return true
	case 24: // STAP-A: 16-bit sizes, then units
		for i := 1; i+2 < len(b); {
			size := int(b[i])<<8 | int(b[i+1])
			if b[i+2]&0x1f == 5 {
				return true
			}
			i += 2 + size
		}
	case 28: // FU-A
		return len(b) > 1 && b[1]&0x80 != 0 && b[1]&0x1f == 5
	}
	return false
}

// newPeerConnection is the SFU's side: pion's default codecs and
// interceptors (NACK, PLI on loss), loopback candidates.
func newPeerConnection() (*webrtc.PeerConnection, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	return api.NewPeerConnection(webrtc.Configuration{})
}
