// Package e2e holds end-to-end tests: they build camd and camctl, run them
// as processes, and check the result with real peers (headless Chromium,
// ffprobe). The power-cut tests (powercut_*) boot a Linux guest under
// QEMU whose init is the program in cardguest, and cut its power.
package e2e
