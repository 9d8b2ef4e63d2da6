// Package testenv is the one rule for what tests need from the host: a
// tool on PATH (ffprobe, qemu-arm-static, ip), root, a device, /proc
// (OpenFiles: the files the test process holds open). Without it
// a test skips, so that `go test ./...` passes on a bare host; with
// CAMD_REQUIRE_TOOLS set (as `make unit` and CI set it, after
// scripts/install-deps.sh) it fails instead, so nothing the suite is
// meant to check is skipped quietly.
//
// Skips for other reasons (-short, a platform the code does not support,
// a test that is the child process of another) stay plain t.Skip.
package testenv
