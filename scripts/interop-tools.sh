#!/bin/sh
# Builds the independent WHEP clients that camd's interop tests (e2e,
# TestInterop*) play the live stream with, once, into a cache directory
# kept between runs (CAMD_INTEROP_DIR, default ~/.cache/camd/interop):
#
#   mediamtx-v1.20.1/mediamtx     MediaMTX built from its Go module
#   go2rtc-whep-<hash>/go2rtc-whep a small program on go2rtc's WebRTC client
#                                  (e2e/testdata/go2rtcwhep, its own module)
#   npm-players/players.js        @eyevinn/webrtc-player and whip-whep
#                                  bundled for the browser (esbuild)
#   npm-onvif/node_modules        the npm ONVIF client `onvif` (Node.js;
#                                  e2e/testdata/onvif-client.js drives it)
#   npm-lighthouse/node_modules/.bin/lighthouse
#                                  Lighthouse, which audits the owner's app
#                                  (device: TestAppLighthouse)
#
# None of them enters camd's go.mod. Each is fetched through the ordinary
# clients (go, npm) and rebuilt only when it is missing. Prints the path
# of each tool asked for (all three by default), one a line.
# Usage: scripts/interop-tools.sh [mediamtx|go2rtc|npm|onvif|lighthouse]...
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
dir=${CAMD_INTEROP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/camd/interop}
mkdir -p "$dir"

MEDIAMTX_VERSION=v1.20.1
EYEVINN_VERSION=0.13.0
WHIPWHEP_VERSION=1.2.0
ESBUILD_VERSION=0.25.12
ONVIF_NPM_VERSION=0.8.3
# 12.8.2: the last Lighthouse that runs on Debian 13's Node.js 20 (13.x
# wants Node.js 22).
LIGHTHOUSE_VERSION=12.8.2

log() { echo "interop-tools: $*" >&2; }

# MediaMTX's main package embeds two files its release process generates
# (internal/core/VERSION, internal/servers/hls/hls.min.js): build a copy of
# the module with both present.
mediamtx() {
	out="$dir/mediamtx-$MEDIAMTX_VERSION"
	path="$out/mediamtx"
	[ -x "$path" ] && return 0
	log "building MediaMTX $MEDIAMTX_VERSION"
	src=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "github.com/bluenviron/mediamtx@$MEDIAMTX_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$src" ] || { log "no module directory for MediaMTX"; return 1; }
	tmp=$(mktemp -d "$dir/mediamtx-src.XXXXXX")
	cp -R "$src/." "$tmp/"
	chmod -R u+w "$tmp"
	echo "$MEDIAMTX_VERSION" >"$tmp/internal/core/VERSION"
	: >"$tmp/internal/servers/hls/hls.min.js"
	mkdir -p "$out.tmp"
	(cd "$tmp" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$out.tmp/mediamtx" .)
	rm -rf "$tmp" "$out"
	mv "$out.tmp" "$out"
}

# go2rtc's binary does not build from its module (its ALSA and V4L2
# packages carry C files without cgo), so the test program imports its
# pkg/webrtc client instead.
go2rtc() {
	mod="$repo/e2e/testdata/go2rtcwhep"
	hash=$(cat "$mod/go.mod" "$mod/go.sum" "$mod"/*.go | sha256sum | cut -c1-12)
	out="$dir/go2rtc-whep-$hash"
	path="$out/go2rtc-whep"
	[ -x "$path" ] && return 0
	log "building the go2rtc WHEP client"
	mkdir -p "$out.tmp"
	(cd "$mod" && CGO_ENABLED=0 go build -o "$out.tmp/go2rtc-whep" .)
	rm -rf "$out"
	mv "$out.tmp" "$out"
}

# The browser players come as npm packages (one an ES module, one
# CommonJS with dependencies): install them and bundle both into one ES
# module the test page imports.
npm_players() {
	out="$dir/npm-players"
	stamp="eyevinn-$EYEVINN_VERSION whip-whep-$WHIPWHEP_VERSION esbuild-$ESBUILD_VERSION"
	path="$out/players.js"
	[ -f "$path" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ] && return 0
	log "installing the npm WHEP players"
	command -v npm >/dev/null || { log "npm is missing (scripts/install-deps.sh installs it)"; return 1; }
	rm -rf "$out.tmp"
	mkdir -p "$out.tmp"
	cat >"$out.tmp/package.json" <<JSON
{"name": "camd-interop-players", "private": true, "version": "0.0.0"}
JSON
	(cd "$out.tmp" && npm install --no-audit --no-fund --loglevel=error \
		"@eyevinn/webrtc-player@$EYEVINN_VERSION" "whip-whep@$WHIPWHEP_VERSION" "esbuild@$ESBUILD_VERSION" >&2)
	cat >"$out.tmp/entry.js" <<'JS'
export { WebRTCPlayer } from "@eyevinn/webrtc-player";
export { WHEPClient } from "whip-whep/whep.js";
JS
	(cd "$out.tmp" && ./node_modules/.bin/esbuild entry.js --bundle --format=esm --platform=browser \
		--outfile=players.js --log-level=warning >&2)
	echo "$stamp" >"$out.tmp/stamp"
	rm -rf "$out"
	mv "$out.tmp" "$out"
}

# npm_install DIR PACKAGE VERSION WHAT: an npm package installed as is
# into $dir/DIR (once per version); path is its node_modules.
npm_install() {
	out="$dir/$1"
	stamp="$2-$3"
	path="$out/node_modules"
	[ -d "$path/$2" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ] && return 0
	log "installing $4"
	command -v npm >/dev/null || { log "npm is missing (scripts/install-deps.sh installs it)"; return 1; }
	rm -rf "$out.tmp"
	mkdir -p "$out.tmp"
	cat >"$out.tmp/package.json" <<JSON
{"name": "camd-$1", "private": true, "version": "0.0.0"}
JSON
	(cd "$out.tmp" && npm install --no-audit --no-fund --loglevel=error "$2@$3" >&2)
	echo "$stamp" >"$out.tmp/stamp"
	rm -rf "$out"
	mv "$out.tmp" "$out"
}

# The npm ONVIF client (agsh/onvif), for Node.js.
npm_onvif() { npm_install npm-onvif onvif "$ONVIF_NPM_VERSION" "the npm ONVIF client"; }

# Lighthouse (Node.js); the test drives it against a Chromium it starts
# itself. path: its command.
npm_lighthouse() {
	npm_install npm-lighthouse lighthouse "$LIGHTHOUSE_VERSION" Lighthouse || return 1
	path="$path/.bin/lighthouse"
}

[ $# -eq 0 ] && set -- mediamtx go2rtc npm onvif lighthouse
for t in "$@"; do
	case $t in
	mediamtx) mediamtx ;;
	go2rtc) go2rtc ;;
	npm) npm_players ;;
	onvif) npm_onvif ;;
	lighthouse) npm_lighthouse ;;
	*) log "unknown tool $t"; exit 2 ;;
	esac
	echo "$path"
done
