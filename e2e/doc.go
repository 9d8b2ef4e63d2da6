// Package e2e holds end-to-end tests: they build camd and camctl, run them
// as processes, and check the result with real peers (headless Chromium,
// ffprobe).
package e2e
