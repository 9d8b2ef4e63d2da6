package nvr

import (
	"errors"
	"time"
)

// Kind is how the NVR reaches a camera.
type Kind string

// Camera kinds.
const (
	// KindCamd is a camd camera, paired with an invitation code and
	// pulled over WebRTC (WHEP).
	KindCamd Kind = "camd"
	// KindRTSP is any camera with an RTSP URL.
	KindRTSP Kind = "rtsp"
	// KindONVIF is a camera whose RTSP URL its ONVIF media service gives
	// (GetProfiles, GetStreamUri).
	KindONVIF Kind = "onvif"
)

// Recording is a camera's recording mode.
type Recording string

// Recording modes.
const (
	RecordContinuous Recording = "continuous"
	// RecordMotion records around the motion the camera reports (the NVR
	// has no pictures to look at): a camd camera's motion events, an
	// ONVIF camera's motion topics. Other cameras: ErrNoMotion.
	RecordMotion Recording = "motion"
	RecordOff    Recording = "off"
)

// State is a camera's health.
type State string

// Camera states.
const (
	// Connecting: the puller is reaching the camera; no frame yet.
	Connecting State = "connecting"
	// Online: frames arrive.
	Online State = "online"
	// Offline: no frame for Options.Silence, or the camera cannot be
	// reached; tried again with backoff.
	Offline State = "offline"
	// Unauthorized: the camera refused the NVR's credential (revoked);
	// tried again rarely.
	Unauthorized State = "unauthorized"
	// Removed: the owner removed the camera but kept its recordings;
	// its credential is deleted and it is not pulled.
	Removed State = "removed"
)

// Camera is what the NVR knows of one camera that the owner added, as the
// API shows it: no secret.
type Camera struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Stream is the camera's stream number in the recording store.
	Stream uint32 `json:"stream"`
	// Address is where the camera is: HOST:PORT for camd and ONVIF, the
	// RTSP URL without its user and password for RTSP.
	Address string `json:"address"`
	// Recording is the camera's recording mode: continuous (the
	// default), motion or off.
	Recording Recording `json:"recording"`
	// QuotaShare is the camera's share of the recording quota, in
	// percent; 0: an equal part of what the others' shares leave.
	QuotaShare float64 `json:"quota_share,omitempty"`
	// DeviceID is a camd camera's device ID.
	DeviceID string    `json:"device_id,omitempty"`
	Added    time.Time `json:"added"`
	// RemovedAt is when the owner removed the camera (State Removed).
	RemovedAt time.Time `json:"removed,omitzero"`

	State State `json:"state"`
	// Since is when the camera entered State.
	Since     time.Time `json:"since,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Frames counts the frames received since the NVR started, and
	// Attempts the times it reached for the camera.
	Frames   uint64 `json:"frames"`
	Attempts uint64 `json:"attempts"`
}

// secret is how the NVR proves itself to a camera. It is stored with the
// camera's record and never leaves the package.
type secret struct {
	// Token is the bearer credential from pairing with a camd camera, and
	// Fingerprint the SHA-256 of its certificate (pinned).
	Token       string `json:"token,omitempty"`
	Fingerprint []byte `json:"fingerprint,omitempty"`
	// User and Password are RTSP's and ONVIF's.
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// URL is the RTSP URL without user and password (RTSP and ONVIF: what
	// GetStreamUri gave).
	URL string `json:"url,omitempty"`
	// Events is an ONVIF camera's events service (GetCapabilities), ""
	// when it has none.
	Events string `json:"events,omitempty"`
	// Media is an ONVIF camera's media service and Profile the token of
	// the profile recorded: the NVR asks there for a keyframe
	// (SetSynchronizationPoint) as a viewer joins. "" for a camera added
	// before the NVR kept them.
	Media   string `json:"media,omitempty"`
	Profile string `json:"profile,omitempty"`
}

// Errors of adding and pulling cameras.
var (
	// ErrNotFound: no camera has this ID.
	ErrNotFound = errors.New("nvr: no such camera")
	// ErrExists: the camera is added already.
	ErrExists = errors.New("nvr: camera already added")
	// ErrBadRequest: the request names no camera, or in a way the NVR
	// cannot use (not a CAMD1 invitation, not an rtsp:// URL).
	ErrBadRequest = errors.New("nvr: bad camera request")
	// ErrUnreachable: the camera did not answer.
	ErrUnreachable = errors.New("nvr: camera unreachable")
	// ErrRefused: the camera refused the code or the credentials.
	ErrRefused = errors.New("nvr: camera refused the credentials")
	// ErrNoVideo: the camera's stream has no video the NVR can record
	// (no H.264; H.265 is refused, docs/nvr.md).
	ErrNoVideo = errors.New("nvr: no H.264 video")
	// ErrTooMany: Options.MaxCameras are added.
	ErrTooMany = errors.New("nvr: too many cameras")
	// ErrRemoved: the camera was removed; only its recordings are left.
	ErrRemoved = errors.New("nvr: camera removed")
	// ErrClosed: the manager is closed.
	ErrClosed = errors.New("nvr: closed")
)
