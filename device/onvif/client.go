package onvif

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"time"
)

// SecurityHeader is a WS-Security header holding a UsernameToken with a
// PasswordDigest for user and secret, created at created, with a fresh
// random nonce: what an ONVIF client puts in a request's SOAP Header.
// camd's own tests and benchmarks call it as a client would.
func SecurityHeader(user, secret string, created time.Time) string {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	cr := created.UTC().Format("2006-01-02T15:04:05.000Z")
	digest := sha1.Sum([]byte(string(nonce) + cr + secret))
	return `<wsse:Security xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `"><wsse:UsernameToken>` +
		`<wsse:Username>` + user + `</wsse:Username>` +
		`<wsse:Password Type="` + passwordDigest + `">` + base64.StdEncoding.EncodeToString(digest[:]) + `</wsse:Password>` +
		`<wsse:Nonce>` + base64.StdEncoding.EncodeToString(nonce) + `</wsse:Nonce>` +
		`<wsu:Created>` + cr + `</wsu:Created></wsse:UsernameToken></wsse:Security>`
}

// Envelope is a SOAP 1.2 request: header (a SecurityHeader, or "") and
// body, one action element that declares its namespace.
func Envelope(header, body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="` + nsSOAP + `"><s:Header>` + header +
		`</s:Header><s:Body>` + body + `</s:Body></s:Envelope>`
}
