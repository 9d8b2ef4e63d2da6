#!/bin/sh
# Installs what camd's tests need on Debian: headless Chromium (live view in
# a real browser), ffmpeg/ffprobe (fixtures and decoding checks), and the
# network tools for multi-host tests. Safe to run again: it installs only
# what is missing.
set -eu

packages="chromium ffmpeg iproute2"
missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
