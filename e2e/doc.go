// Package e2e holds end-to-end tests: they build camd and camctl, run them
// as processes, and check the result with real peers (headless Chromium,
// ffprobe). The power-cut tests (powercut_*) boot a Linux guest under
// QEMU whose init is the program in cardguest, and cut its power; the
// Wi-Fi test (wifi_test.go) boots one whose init is wifiguest, with two
// mac80211_hwsim radios, real hostapd, dnsmasq and wpa_supplicant.
// guestinit is what both inits do first.
package e2e
