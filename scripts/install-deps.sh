#!/bin/sh
# Installs what camd's tests need on Debian: headless Chromium (live view in
# a real browser), ffmpeg/ffprobe (fixtures and decoding checks), and the
# network tools for multi-host tests. Safe to run again: it installs only
# what is missing.
set -eu

# avahi-daemon, avahi-utils and dbus: the discovery test checks camd against
# Avahi, started by the test inside a network namespace it creates.
packages="chromium ffmpeg iproute2 avahi-daemon avahi-utils dbus"
# make cross and the ARM smoke runs: Debian's cross compilers (with their
# C libraries, only recommended by the compiler packages), qemu-user-static
# to run the ARM binaries, busybox for the init script's test.
packages="$packages gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross"
packages="$packages gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf libc6-dev-armhf-cross"
packages="$packages qemu-user-static busybox"
# libspeexdsp-dev: the acoustic echo canceller of full-duplex calls
# (media/talk, through cgo; linked statically into camd). The ARM cgo
# builds link the target's libspeexdsp.a: Debian's multiarch packages
# for arm64 and armhf (Multi-Arch: same, beside the amd64 one; the cross
# compilers search /usr/lib/TRIPLET), so dpkg is told of those
# architectures below.
packages="$packages libspeexdsp-dev libspeexdsp-dev:arm64 libspeexdsp-dev:armhf"
foreign="arm64 armhf"
# strace: make bench counts the recorder's fsyncs with it.
packages="$packages strace"
# mosquitto: the MQTT tests (device/mqtt) run a real broker, started by the
# test on a free loopback port with a configuration of its own.
packages="$packages mosquitto"
# onvif-tools: onvif-util, an independent ONVIF client (libonvif) that the
# ONVIF interop test discovers and queries camd with.
packages="$packages onvif-tools"

# The card tests: ext4 images on loop devices (losetup, mount: util-linux;
# mkfs.ext4, e2fsck: e2fsprogs), and FAT32 and exFAT made and checked as
# image files (dosfstools, exfatprogs), which camd also runs on a card.
packages="$packages util-linux e2fsprogs dosfstools exfatprogs"
# The power-cut tests (e2e/powercut_*): Debian's kernel booted under
# qemu-system-x86_64 (its blklogwrites driver logs the card's writes).
packages="$packages qemu-system-x86 linux-image-cloud-amd64"
# The Wi-Fi tests (network/): camd's commands checked against the real
# wpa_supplicant's control interface (its wired driver, no radio). Setup
# mode on simulated radios (e2e/wifi_test.go): Debian's generic kernel,
# whose mac80211_hwsim the cloud kernel lacks, booted under QEMU with
# hostapd and dnsmasq (the camera's access point and DHCP server),
# wpa_supplicant and busybox's udhcpc (the phone) and iw copied into its
# initramfs. dnsmasq-base: the program without the system service.
packages="$packages wpasupplicant linux-image-amd64 hostapd dnsmasq-base iw"
missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# libasound2: miniaudio loads it at run time for the microphone, and the
# capture tests open ALSA's "null" PCM through it (no sound card needed).
# Debian 13 names the package libasound2t64; apt picks it for libasound2.
dpkg-query -S '*/libasound.so.2' >/dev/null 2>&1 || missing="$missing libasound2"
# npm: the interop tests' browser WHEP players are npm packages
# (scripts/interop-tools.sh). A machine may have Node.js with its own npm
# from elsewhere; Debian's packages otherwise.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
# The interop tests' independent WHEP clients (MediaMTX, go2rtc's client,
# the npm players), the npm ONVIF client and Lighthouse (the app's
# accessibility audit), built once into a cache after the packages.
interop() { "$(dirname "$0")/interop-tools.sh" >/dev/null; }
if [ -z "$missing" ]; then
	interop
	exit 0
fi

echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
for a in $foreign; do
	[ "$a" = "$(dpkg --print-architecture)" ] || dpkg --print-foreign-architectures | grep -qx "$a" ||
		$SUDO dpkg --add-architecture "$a"
done
$SUDO apt-get update -qq
# Installing avahi-daemon must not start it on this machine's own
# interfaces: deny service starts for the length of the install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
interop
