package events

import (
	"slices"
	"strings"
)

// The types of events. A type is "family.name" (or only the family);
// the family decides who may see it (Visible), and a client asks for a
// whole family with "family.*" (?type=recording.*). The reserved types
// are named here so that the issues that publish them (NVR mode) add
// producers, not a new model; nothing publishes them yet.
const (
	// Motion: a span starts ("motion", its clip and snapshot when it
	// has them) and ends ("motion.end", data "start": the ID of the
	// event that began it).
	Motion    = "motion"
	MotionEnd = "motion.end"

	// Recording and its storage (storage/recordings, device/storage.go).
	// A pause says why in data "reason": "storage full", "storage
	// read-only", "storage missing", "storage failing", "no card", ...;
	// a resume says what it recovered from ("recovered_from", and
	// "paused_seconds" when camd saw the pause).
	RecordingPaused        = "recording.paused"
	RecordingResumed       = "recording.resumed"
	RecordingQuarantined   = "recording.quarantined"
	RecordingVolumeMissing = "recording.volume_missing"
	RecordingForeignFile   = "recording.foreign_file"
	RecordingCardChecked   = "recording.card_checked"
	RecordingCardFormatted = "recording.card_formatted"
	// StorageNearlyFull: the recordings' file system cannot hold what
	// their quota still allows.
	StorageNearlyFull = "storage.nearly_full"

	// Who may use the camera (device/pairing): data "user", "name",
	// "role", "by" (who made the invitation), "reason" (a revocation's).
	UserPaired          = "user.paired"
	UserRevoked         = "user.revoked"
	UserRenamed         = "user.renamed"
	InvitationMade      = "invitation.made"
	InvitationCancelled = "invitation.cancelled"

	// SettingsChanged: data "keys" (comma-separated, sorted), "by" and
	// "by_name" (the owner who changed them).
	SettingsChanged = "settings.changed"

	// CrashRecorded: camd found a fatal error's trace of an earlier
	// run and kept it as a crash report (data "report": its ID,
	// "version", "uptime_seconds").
	CrashRecorded = "crash.recorded"

	// Calls (device/calls, docs/calls.md): a doorbell press rings every
	// paired phone; the call is answered, declined (busy), ended, or
	// missed. Data "call": the call's ID.
	DoorbellPressed = "doorbell.pressed"
	CallRinging     = "call.ringing"
	CallAnswered    = "call.answered"
	CallDeclined    = "call.declined"
	CallEnded       = "call.ended"
	CallMissed      = "call.missed"

	// Software updates (update/, docs/updates.md): data "version".
	UpdateAvailable  = "update.available"
	UpdateRefused    = "update.refused"
	UpdateFailed     = "update.failed"
	UpdateRebooting  = "update.rebooting"
	UpdateInstalled  = "update.installed"
	UpdateRolledBack = "update.rolled_back"

	// Wi-Fi (network/, docs/network.md): the joins the owner asked for
	// (the API, the Wi-Fi code), the network lost, setup mode. Data
	// "ssid", and as each has them "security", "address", "reason",
	// "error"; never a passphrase.
	WiFiJoined       = "wifi.joined"
	WiFiJoinFailed   = "wifi.join_failed"
	WiFiDisconnected = "wifi.disconnected"
	WiFiSetupEntered = "wifi.setup_entered"
	WiFiSetupLeft    = "wifi.setup_left"

	// The owner's sinks (notify/, docs/push.md). WebhookDisabled: a
	// webhook failed for 24 h and camd stopped sending to it (data
	// "webhook", "url" without its query, "failing_since", "dropped":
	// the deliveries that were queued).
	WebhookDisabled = "webhook.disabled"

	// The owner's WHIP publish to an SFU (docs/whip.md). WHIPFailed: the
	// publish failed or broke, once per outage; WHIPRecovered: it is
	// back.
	WHIPFailed    = "whip.failed"
	WHIPRecovered = "whip.recovered"

	// NVR mode (nvr/, docs/nvr.md): a camera the NVR records comes and
	// goes (Camera: its ID; data "name", "state", "error").
	CameraOnline       = "camera.online"
	CameraOffline      = "camera.offline"
	CameraUnauthorized = "camera.unauthorized"
)

// Type describes one type of event.
type Type struct {
	Name string
	// Viewers: viewers see it (the media events); owners see every
	// type.
	Viewers bool
	// Reserved: named for a later producer; nothing publishes it yet.
	Reserved bool
	Doc      string
}

// Types lists every type camd publishes or reserves (docs/events.md
// lists them too, and a test keeps the two the same).
var Types = []Type{
	{Motion, true, false, "motion started (`cause`: picture, pir, or the API's); `clip.from`, `snapshot`"},
	{MotionEnd, true, false, "motion ended; `start`: the ID of its `motion` event; `clip`, `snapshot` as that one's"},
	{RecordingPaused, true, false, "recording paused; `reason`: storage full, storage read-only, storage missing, storage failing, no card, card busy, …; the card's state"},
	{RecordingResumed, true, false, "recording resumed; `recovered_from`: the reason of the pause it ends, `paused_seconds`"},
	{RecordingQuarantined, true, false, "a damaged volume was moved aside (`volume`, `reason`)"},
	{RecordingVolumeMissing, true, false, "a volume the catalog lists is gone: its recordings are lost (`volume`, `first`)"},
	{RecordingForeignFile, true, false, "a file that is not a volume was moved aside (`file`, `moved_to`)"},
	{RecordingCardChecked, true, false, "the owner's check of the card ran (`outcome`, `exit_code`, `device`)"},
	{RecordingCardFormatted, true, false, "the owner's format of the card ran (`outcome`, `exit_code`, `device`)"},
	{StorageNearlyFull, true, false, "the file system cannot hold what the quota still allows (`free_bytes`, `bytes`, `quota_bytes`)"},
	{UserPaired, false, false, "a user paired (`user`, `name`, `role`; `invitation` and `by`, who made it, for an invited user)"},
	{UserRevoked, false, false, "a user was revoked (`user`, `name`, `role`; `reason` for each user removed with the last owner)"},
	{UserRenamed, false, false, "a user was renamed (`user`, `name`, `old_name`)"},
	{InvitationMade, false, false, "an invitation was made (`invitation`, `role`, `expires`, `by`)"},
	{InvitationCancelled, false, false, "an invitation was cancelled (`invitation`, `role`, `by`: who made it)"},
	{SettingsChanged, false, false, "settings changed (`keys`, `by`, `by_name`)"},
	{CrashRecorded, false, false, "a crash report was made from an earlier run's fatal error (`report`, `version`, `uptime_seconds`)"},
	{DoorbellPressed, true, false, "the doorbell was pressed (`call`: the call it rang; a press during a call rings nothing and is only logged)"},
	{CallRinging, true, false, "a call rings the paired phones (`call`, `source`: doorbell or api, `user`: who started it from the API)"},
	{CallAnswered, true, false, "a call was answered (`call`, `user`: the phone that won; the others stop ringing)"},
	{CallDeclined, true, false, "every phone declined, or one was busy (`call`, `user`: the last, `reason`: declined or busy, `state`)"},
	{CallEnded, true, false, "an answered call ended (`call`, `seconds`, `reason`: hung up, max duration, connection failed, access ended, …; `user` when a phone hung up)"},
	{CallMissed, true, false, "nobody answered in `calls.ring_timeout` (`call`, `reason`); `snapshot` from the press, `clip` from 2 s before it to 8 s after, recorded whatever the recording mode"},
	{UpdateAvailable, false, false, "a signed update is available (`version`, `size`, `notes`)"},
	{UpdateRefused, false, false, "a feed or an image was refused (`reason`: signature, expired, replayed, downgrade, hash, truncated, …)"},
	{UpdateFailed, false, false, "an update could not be downloaded or installed (`version`, `error`)"},
	{UpdateRebooting, false, false, "an update was installed and camd reboots into it (`version`)"},
	{UpdateInstalled, false, false, "the new version passed its health check and was marked good (`version`)"},
	{UpdateRolledBack, false, false, "the new version was not marked good in time and the old one came back (`version`, `reason`)"},
	{WiFiJoined, false, false, "the camera joined the network the owner gave (`ssid`, `security`, `address`)"},
	{WiFiJoinFailed, false, false, "a join failed and the old network (or setup mode) is back (`ssid`, `security`, `reason`: wrong_key, not_found, no_lease, timeout, rejected, credentials; `error`)"},
	{WiFiDisconnected, false, false, "the camera lost its network without being asked (`ssid`, `reason`: the IEEE 802.11 reason code); wpa_supplicant keeps trying to join it again"},
	{WiFiSetupEntered, false, false, "setup mode's access point opened (`ssid`: the access point's, `reason`: no network saved, pair button held, …)"},
	{WiFiSetupLeft, false, false, "setup mode ended: the camera joined `ssid`, or its access point could not open again (`error`)"},
	{WebhookDisabled, false, false, "a webhook failed for 24 h and was disabled (`webhook`, `url` without its query, `failing_since`, `dropped`: the deliveries it had queued)"},
	{WHIPFailed, false, false, "the publish to the owner's SFU failed or broke, once until it is back (`endpoint`: scheme and host, `error`, `state`: retrying, or refused when the SFU refused the token)"},
	{WHIPRecovered, false, false, "the publish to the owner's SFU is back (`endpoint`, `down_seconds`)"},
	{CameraOnline, true, false, "an NVR's camera sends frames again after it was offline or unauthorized (`name`, `state`)"},
	{CameraOffline, true, false, "an NVR's camera sent no frame for 6 s, or cannot be reached, or sends what is not H.264 (`name`, `state`, `error`); tried again with backoff"},
	{CameraUnauthorized, true, false, "an NVR's camera refused the NVR's credential: its owner revoked the NVR (`name`, `state`, `error`); tried again every 5 min"},
}

// viewerFamilies are the families of the media events: what the camera
// saw and heard, calls, and the state of its recording and storage.
var viewerFamilies = []string{"motion", "doorbell", "call", "recording", "storage", "camera"}

// Visible reports whether a user with the owner role (owner) or without
// it may see events of type kind. Owners see every event; viewers see
// the media events only: what the camera saw and heard (motion, the
// doorbell, calls), the state of its recording and storage, and an
// NVR's cameras; not user administration, settings, crashes or updates.
// A new family of types is for owners only until it is added here.
func Visible(kind string, owner bool) bool {
	if owner {
		return true
	}
	family, _, _ := strings.Cut(kind, ".")
	return slices.Contains(viewerFamilies, family)
}
