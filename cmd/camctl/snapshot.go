package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

const snapshotUsage = `usage:
  camctl snapshot [--out F.jpg] [--save]   the camera's picture now (--save keeps it on the camera)
  camctl snapshot list                     the snapshots saved on the camera
  camctl snapshot get ID --out F.jpg       fetch a saved snapshot
  camctl snapshot delete ID                delete a saved snapshot (owner)
`

func snapshotCmd(args []string, stdout, stderr io.Writer) int {
	verb := "take"
	var id string
	if len(args) > 0 {
		switch args[0] {
		case "list":
			verb, args = args[0], args[1:]
		case "get", "delete":
			if len(args) < 2 {
				fmt.Fprint(stderr, snapshotUsage)
				return 2
			}
			verb, id, args = args[0], args[1], args[2:]
		case "help", "-h", "--help":
			fmt.Fprint(stdout, snapshotUsage)
			return 0
		}
	}
	fs := flag.NewFlagSet("camctl snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addCameraFlags(fs)
	out := fs.String("out", "snapshot.jpg", "write the JPEG to this `file`")
	save := fs.Bool("save", false, "keep the snapshot on the camera too")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	cam, err := cf.open()
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	switch verb {
	case "list":
		var list []struct {
			ID    string    `json:"id"`
			Time  time.Time `json:"time"`
			Size  int       `json:"size"`
			Cause string    `json:"cause"`
		}
		if err := cam.do("GET", "/api/v1/snapshots", nil, &list); err != nil {
			fmt.Fprintln(stderr, "camctl:", err)
			return 1
		}
		for _, s := range list {
			fmt.Fprintf(stdout, "%s  %s  %7d bytes  %s\n", s.ID, s.Time.Local().Format("2006-01-02 15:04:05.000"), s.Size, s.Cause)
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "no saved snapshots")
		}
		return 0
	case "delete":
		if err := cam.do("DELETE", "/api/v1/snapshots/"+id, nil, nil); err != nil {
			fmt.Fprintln(stderr, "camctl:", err)
			return 1
		}
		fmt.Fprintln(stdout, "deleted", id)
		return 0
	}
	path := "/api/v1/snapshot"
	if verb == "get" {
		path = "/api/v1/snapshots/" + id
	} else if *save {
		var snap struct {
			ID string `json:"id"`
		}
		if err := cam.do("POST", "/api/v1/snapshots", nil, &snap); err != nil {
			fmt.Fprintln(stderr, "camctl:", err)
			return 1
		}
		fmt.Fprintln(stdout, "saved on the camera as", snap.ID)
		path = "/api/v1/snapshots/" + snap.ID
	}
	resp, err := cam.request(cam.client, "GET", path, http.Header{})
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err == nil {
		err = os.WriteFile(*out, b, 0o600)
	}
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes, captured %s)\n", *out, len(b), resp.Header.Get("X-Camd-Captured"))
	return 0
}
