package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"
)

// nvrCamera is a camera an NVR records, as GET /api/v1/cameras lists it.
type nvrCamera struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Stream    uint32    `json:"stream"`
	Address   string    `json:"address"`
	Recording string    `json:"recording"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error"`
	Frames    uint64    `json:"frames"`
}

const camerasUsage = `usage (NVR mode, docs/nvr.md):
  camctl cameras list [--json]
  camctl cameras discovered [--window 2s] [--json]
  camctl cameras add [--name NAME] [--recording continuous|motion|off] [--camera-addr HOST:PORT] CODE
  camctl cameras add-rtsp [--name NAME] [--user U --password P] URL
  camctl cameras add-onvif [--name NAME] --user U --password P HOST:PORT
  camctl cameras set [--name NAME] [--recording continuous|motion|off] ID
  camctl cameras remove [--delete-recordings] ID
`

// camerasCmd manages the cameras of an NVR: the camd camera that
// camctl talks to is the NVR.
func camerasCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "discovered" {
		return camerasDiscovered(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("camctl cameras", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	name := fs.String("name", "", "the camera's `name`")
	recording := fs.String("recording", "", "recording `mode`: continuous, motion (cameras that report motion) or off")
	camAddr := fs.String("camera-addr", "", "the camd camera's `HOST:PORT` (default: the address in the code)")
	user := fs.String("user", "", "RTSP or ONVIF `user`")
	password := fs.String("password", "", "RTSP or ONVIF `password`")
	deleteRecordings := fs.Bool("delete-recordings", false, "forget the camera and its recordings too")
	// each changes one camera and prints it as camd answers.
	each := func(method string, path func(arg string) string, body func(arg string) map[string]string) verb {
		return verb{1, func(cam *camera, args []string) error {
			var c nvrCamera
			var b any
			if body != nil {
				b = omitEmpty(body(args[0]))
			}
			if err := cam.do(method, path(args[0]), b, &c); err != nil {
				return err
			}
			if *asJSON {
				printJSON(stdout, c)
				return nil
			}
			fmt.Fprintf(stdout, "%s %s (%s, %s): %s\n", c.ID, c.Name, c.Kind, c.Address, c.State)
			return nil
		}}
	}
	cameras := func(string) string { return "/api/v1/cameras" }
	one := func(id string) string { return "/api/v1/cameras/" + url.PathEscape(id) }
	adding := func(field string) func(string) map[string]string {
		return func(arg string) map[string]string {
			b := map[string]string{"name": *name, "recording": *recording, "user": *user, "password": *password, field: arg}
			if field == "code" {
				b["addr"] = *camAddr
			}
			return b
		}
	}
	return runVerb(fs, camerasUsage, map[string]verb{
		"list": {0, func(cam *camera, _ []string) error {
			var cs []nvrCamera
			if err := cam.do("GET", "/api/v1/cameras", nil, &cs); err != nil {
				return err
			}
			return printList(stdout, *asJSON, cs, "ID\tNAME\tKIND\tSTATE\tRECORDING\tADDRESS\tLAST ERROR", func(c nvrCamera) []string {
				return []string{c.ID, c.Name, c.Kind, c.State, c.Recording, c.Address, c.LastError}
			})
		}},
		"add":       each("POST", cameras, adding("code")),
		"add-rtsp":  each("POST", cameras, adding("rtsp")),
		"add-onvif": each("POST", cameras, adding("onvif")),
		"set": each("PATCH", one, func(string) map[string]string {
			return map[string]string{"name": *name, "recording": *recording}
		}),
		"remove": each("DELETE", func(id string) string {
			if *deleteRecordings {
				return one(id) + "?recordings=delete"
			}
			return one(id)
		}, nil),
	}, args, stderr)
}

// omitEmpty leaves out the fields not given.
func omitEmpty(m map[string]string) map[string]string {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return m
}
