package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
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
  camctl cameras remove [--delete-recordings] ID`

// camerasCmd manages the cameras of an NVR: the camd camera that
// camctl talks to is the NVR.
func camerasCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, camerasUsage)
		return 2
	}
	if args[0] == "discovered" {
		return camerasDiscovered(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("camctl cameras "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addCameraFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	name := fs.String("name", "", "the camera's `name`")
	recording := fs.String("recording", "", "recording `mode`: continuous, motion (cameras that report motion) or off")
	camAddr := fs.String("camera-addr", "", "the camd camera's `HOST:PORT` (default: the address in the code)")
	user := fs.String("user", "", "RTSP or ONVIF `user`")
	password := fs.String("password", "", "RTSP or ONVIF `password`")
	deleteRecordings := fs.Bool("delete-recordings", false, "forget the camera and its recordings too")
	if err := parseFlags(fs, args[1:]); err != nil {
		return 2
	}
	want := 1
	if args[0] == "list" {
		want = 0
	}
	if fs.NArg() != want {
		fmt.Fprintln(stderr, camerasUsage)
		return 2
	}
	cam, err := cf.open()
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	body := map[string]string{"name": *name, "recording": *recording, "user": *user, "password": *password}
	var c nvrCamera
	switch args[0] {
	case "list":
		var cs []nvrCamera
		if err = cam.do("GET", "/api/v1/cameras", nil, &cs); err == nil {
			if *asJSON {
				printJSON(stdout, cs)
				return 0
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tKIND\tSTATE\tRECORDING\tADDRESS\tLAST ERROR")
			for _, c := range cs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, c.Kind, c.State, c.Recording, c.Address, c.LastError)
			}
			tw.Flush()
		}
		return done(err, stderr)
	case "add":
		body["code"], body["addr"] = fs.Arg(0), *camAddr
		err = cam.do("POST", "/api/v1/cameras", omitEmpty(body), &c)
	case "add-rtsp":
		body["rtsp"] = fs.Arg(0)
		err = cam.do("POST", "/api/v1/cameras", omitEmpty(body), &c)
	case "add-onvif":
		body["onvif"] = fs.Arg(0)
		err = cam.do("POST", "/api/v1/cameras", omitEmpty(body), &c)
	case "set":
		err = cam.do("PATCH", "/api/v1/cameras/"+url.PathEscape(fs.Arg(0)), omitEmpty(map[string]string{"name": *name, "recording": *recording}), &c)
	case "remove":
		path := "/api/v1/cameras/" + url.PathEscape(fs.Arg(0))
		if *deleteRecordings {
			path += "?recordings=delete"
		}
		err = cam.do("DELETE", path, nil, &c)
	default:
		fmt.Fprintln(stderr, camerasUsage)
		return 2
	}
	if err != nil {
		return done(err, stderr)
	}
	if *asJSON {
		printJSON(stdout, c)
		return 0
	}
	fmt.Fprintf(stdout, "%s %s (%s, %s): %s\n", c.ID, c.Name, c.Kind, c.Address, c.State)
	return 0
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

func done(err error, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	return 0
}
