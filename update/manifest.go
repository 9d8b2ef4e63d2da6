package update

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
)

// Errors. Each refusal of a feed or an image is one of the first seven,
// and is published as an update.refused event whose reason is the
// sentinel's Reason.
var (
	ErrSignature = errors.New("update: feed signature is not from a trusted key")
	ErrExpired   = errors.New("update: feed expired")
	ErrReplayed  = errors.New("update: feed is older than one already seen (replayed or frozen)")
	ErrDowngrade = errors.New("update: feed offers a version older than the one installed")
	ErrProduct   = errors.New("update: feed is for another product")
	ErrHash      = errors.New("update: image hash does not match the signed feed")
	ErrTruncated = errors.New("update: image download ended early")
	ErrManifest  = errors.New("update: malformed feed")

	ErrOff      = errors.New("update: checking is off (the owner turns it on with the update_check setting)")
	ErrNoFeed   = errors.New("update: no feed configured (update.feed_url)")
	ErrNoKeys   = errors.New("update: this build has no update keys")
	ErrNoUpdate = errors.New("update: no update available")
	ErrBusy     = errors.New("update: an update is already being applied")
	ErrApproval = errors.New("update: the version approved is not the one offered")
	ErrInstall  = errors.New("update: installer hook failed")
)

// Reason names a refusal for events and the API: signature, expired,
// replayed, downgrade, product, hash, truncated, malformed; "" for other
// errors.
func Reason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{ErrSignature, "signature"}, {ErrExpired, "expired"}, {ErrReplayed, "replayed"},
		{ErrDowngrade, "downgrade"}, {ErrProduct, "product"}, {ErrHash, "hash"},
		{ErrTruncated, "truncated"}, {ErrManifest, "malformed"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ""
}

// Manifest is the signed update feed: one JSON document, signed as a
// whole (feed URL + ".minisig"), so every field below is covered by the
// signature and none can be paired with another feed's (mix and match).
type Manifest struct {
	// Product must be the build's product ("camd" unless the
	// manufacturer sets another), so a feed for another model is refused.
	Product string `json:"product"`
	// Serial grows with every feed published; a feed with a lower serial
	// than one seen before is refused (replay, freeze).
	Serial uint64 `json:"serial"`
	// Issued and Expires bound the feed's validity; an expired feed is
	// refused (freeze: a mirror that keeps serving an old feed).
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	// Version is the image's version, MAJOR.MINOR.PATCH (a leading v and
	// a -prerelease are allowed).
	Version string `json:"version"`
	// Notes are the release notes shown to the owner.
	Notes string `json:"notes,omitempty"`
	Image Image  `json:"image"`
}

// Image is what the installer hook installs.
type Image struct {
	// URL is absolute (https) or relative to the feed's URL.
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// maxManifest bounds the feed and signature documents.
const maxManifest = 64 << 10

// ParseKeys reads minisign public keys: the base64 form ("RWQ…"), or the
// .pub file's two lines, separated by commas or new lines; comments
// ("untrusted comment:" lines, and lines starting with #) are skipped.
func ParseKeys(text string) ([]minisign.PublicKey, error) {
	var keys []minisign.PublicKey
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "untrusted comment:") {
			continue
		}
		for _, f := range strings.Split(line, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			var k minisign.PublicKey
			if err := k.UnmarshalText([]byte(f)); err != nil {
				return nil, fmt.Errorf("update: key %q: %w", f, err)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// verifyFeed checks the signature of a feed document with keys and
// decodes it. It checks nothing else.
func verifyFeed(doc, sig []byte, keys []minisign.PublicKey) (Manifest, error) {
	var m Manifest
	ok := false
	for _, k := range keys {
		if minisign.Verify(k, doc, sig) {
			ok = true
			break
		}
	}
	if !ok {
		return m, ErrSignature
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if _, err := parseVersion(m.Version); err != nil {
		return m, err
	}
	if m.Image.Size <= 0 || m.Image.URL == "" || m.Expires.IsZero() {
		return m, fmt.Errorf("%w: image url, size and expires are required", ErrManifest)
	}
	if b, err := hex.DecodeString(m.Image.SHA256); err != nil || len(b) != sha256.Size {
		return m, fmt.Errorf("%w: image sha256 %q", ErrManifest, m.Image.SHA256)
	}
	return m, nil
}

// imageURL resolves the image's URL against the feed's.
func imageURL(feed string, m Manifest) (string, error) {
	base, err := url.Parse(feed)
	if err != nil {
		return "", fmt.Errorf("%w: feed url: %v", ErrManifest, err)
	}
	ref, err := url.Parse(m.Image.URL)
	if err != nil {
		return "", fmt.Errorf("%w: image url: %v", ErrManifest, err)
	}
	u := base.ResolveReference(ref)
	if u.Scheme != "https" && u.Scheme != base.Scheme {
		return "", fmt.Errorf("%w: image url %q is not https", ErrManifest, u)
	}
	return u.String(), nil
}

// version is MAJOR.MINOR.PATCH and whether it is a prerelease.
type version struct {
	n   [3]int
	pre string
}

// parseVersion reads "1.2.3", "v1.2.3", "1.2.3-rc1" (and "1.2", "1").
func parseVersion(s string) (version, error) {
	var v version
	s = strings.TrimPrefix(s, "v")
	s, v.pre, _ = strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return v, fmt.Errorf("%w: version %q is not MAJOR.MINOR.PATCH", ErrManifest, s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return v, fmt.Errorf("%w: version %q is not MAJOR.MINOR.PATCH", ErrManifest, s)
		}
		v.n[i] = n
	}
	return v, nil
}

// compareVersions orders two versions as semantic versioning does
// (a prerelease comes before its release; prereleases compare as text).
// A version that does not parse (a development build's "dev" or a git
// description) is older than every version.
func compareVersions(a, b string) int {
	va, errA := parseVersion(a)
	vb, errB := parseVersion(b)
	switch {
	case errA != nil && errB != nil:
		return 0
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	for i := range va.n {
		if va.n[i] != vb.n[i] {
			if va.n[i] < vb.n[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case va.pre == vb.pre:
		return 0
	case va.pre == "":
		return 1
	case vb.pre == "":
		return -1
	}
	return strings.Compare(va.pre, vb.pre)
}
