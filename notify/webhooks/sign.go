package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrSecret: a secret that is not "whsec_" and base64.
var ErrSecret = errors.New("webhooks: a secret is whsec_ and base64")

// NewSecret makes a hook's signing secret: "whsec_" and 24 random
// bytes in base64, as Standard Webhooks writes them.
func NewSecret() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// Sign is the webhook-signature header of a message (Standard Webhooks):
// "v1," and the base64 HMAC-SHA256, keyed with the secret's bytes, of
// "id.timestamp.body".
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	raw, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return "", ErrSecret
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrSecret, err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// drain reads what is left of an answer (up to 64 KiB, so that the
// connection can be used again) and closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
