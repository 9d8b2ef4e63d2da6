package discovery

import (
	"strconv"
	"strings"
)

// ServiceType is camd's DNS-SD service type.
const ServiceType = "_camd._tcp"

// ProtocolVersion is the TXT record's layout version (key "txtvers").
const ProtocolVersion = 1

// Info is what a camera says about itself in its TXT record. None of it
// identifies the hardware: ID is camd's random device ID.
type Info struct {
	// Version is the TXT layout version (txtvers).
	Version int `json:"txtvers"`
	// API is the HTTP API version the camera serves under /api/vN/ (api).
	API int `json:"api"`
	// ID is the random device ID (id).
	ID string `json:"id"`
	// Model is the board or product model (model).
	Model string `json:"model,omitempty"`
	// Firmware is camd's version (fw).
	Firmware string `json:"firmware,omitempty"`
	// Paired is whether the camera has an owner (paired=1).
	Paired bool `json:"paired"`
	// Discriminator tells unpaired cameras apart before pairing and
	// matches the one in the pairing QR code (disc, only while unpaired).
	Discriminator uint16 `json:"discriminator,omitempty"`
}

// maxValue bounds each TXT value (a TXT string is at most 255 bytes).
const maxValue = 63

// TXT encodes the record as DNS-SD key=value strings.
func (i Info) TXT() []string {
	clip := func(s string) string {
		if len(s) > maxValue {
			s = s[:maxValue]
		}
		return s
	}
	paired := "0"
	if i.Paired {
		paired = "1"
	}
	txt := []string{
		"txtvers=" + strconv.Itoa(ProtocolVersion),
		"api=" + strconv.Itoa(max(i.API, 1)),
		"id=" + clip(i.ID),
		"model=" + clip(i.Model),
		"fw=" + clip(i.Firmware),
		"paired=" + paired,
	}
	if !i.Paired {
		txt = append(txt, "disc="+strconv.Itoa(int(i.Discriminator)))
	}
	return txt
}

// ParseTXT reads a camd TXT record. Keys it does not know are ignored,
// and so is a value it cannot read; ok is false when there is no id.
func ParseTXT(txt []string) (i Info, ok bool) {
	for _, kv := range txt {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "txtvers":
			i.Version, _ = strconv.Atoi(v)
		case "api":
			i.API, _ = strconv.Atoi(v)
		case "id":
			i.ID = v
		case "model":
			i.Model = v
		case "fw":
			i.Firmware = v
		case "paired":
			i.Paired = v == "1"
		case "disc":
			n, err := strconv.ParseUint(v, 10, 16)
			if err == nil {
				i.Discriminator = uint16(n)
			}
		}
	}
	return i, i.ID != ""
}
