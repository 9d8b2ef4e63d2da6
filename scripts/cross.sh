#!/bin/sh
# make cross: camd for the boards it targets, stripped and version-stamped.
#
#   linux-arm64   cgo: openh264 + Opus (synthetic and V4L2 sources),
#                 speexdsp's echo canceller (tag camd_speexdsp: the
#                 target's libspeexdsp.a from Debian's multiarch
#                 libspeexdsp-dev:arm64, linked statically)
#   linux-armv7   cgo: openh264 + Opus, speexdsp (libspeexdsp-dev:armhf)
#   linux-armv7-lean  cgo: openh264 + Opus, no echo canceller (full
#                 duplex calls run half duplex), for camera SoCs: no V4L2/ALSA
#                 capture (tag camd_nocapture), no embedded time zone
#                 database (camd_notzdata: the firmware ships zoneinfo), C
#                 code built with -Os, and Go inlining kept only where
#                 frames and packets go through (see lean_gcflags)
#   linux-armv6   no cgo: passthrough sources only (a hardware encoder),
#                 lean inlining
#   linux-mipsle  no cgo, soft float: passthrough only (Ingenic T31 class),
#                 lean inlining
#   native-nocgo  this machine's GOARCH built like linux-armv6: what make
#                 bench measures as the passthrough camera's footprint
#                 (not part of the default set)
#
# usage: scripts/cross.sh [-o DIR] [TARGET...]   (default: bin, all five)
# Each binary goes to DIR/TARGET/camd; the sizes are printed at the end.
set -eu
cd "$(dirname "$0")/.."

out=bin
while getopts o: opt; do
	case $opt in
	o) out=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
targets=${*:-linux-arm64 linux-armv7 linux-armv7-lean linux-armv6 linux-mipsle}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
ldflags="-s -w -X github.com/camd-project/camd/device.Version=$version"
# UPDATE_KEYS: the update feed's minisign public keys, comma-separated
# (docs/updates.md, "Keys"); unset: update/keys/trusted.pub.
if [ -n "${UPDATE_KEYS:-}" ]; then
	ldflags="$ldflags -X github.com/camd-project/camd/update.BuildKeys=$UPDATE_KEYS"
fi
GO=${GO:-go}

# lean_gcflags turns off inlining (-l) except in the packages on the path of
# every frame and packet: the runtime, crypto (SRTP, TLS), pion's RTP and
# SRTP, and camd's media packages. Signalling, HTTP, JSON, YAML, DNS and
# settings code lose about 0.9 MB of inlined copies; at 100 viewers camd's
# CPU is the same within noise (docs/benchmarks.md).
lean_gcflags="-gcflags=all=-l"
for p in runtime/... crypto/... github.com/pion/srtp/v3/... github.com/pion/rtp/... github.com/camd-project/camd/media/...; do
	lean_gcflags="$lean_gcflags -gcflags=$p="
done

# lean_tags leave out of the lean builds what a camera SoC fed by its
# hardware encoder does without: Prometheus metrics (camd_nometrics: the
# client and its protobuf code; GET /metrics answers 501) and the Wi-Fi QR
# code window (camd_noqrscan: the decoder's character set tables; a
# passthrough camera has no raw pictures to read a code from).
lean_tags=camd_nometrics,camd_noqrscan

need() {
	command -v "$1" >/dev/null 2>&1 || {
		echo "cross: $1 is missing (make deps installs the cross compilers)" >&2
		exit 1
	}
}

# speexdsp CC ARCH: the cross compiler finds the target's static
# speexdsp (Debian's multiarch path, /usr/lib/TRIPLET, is on its search
# path, and the headers are /usr/include/speex).
speexdsp() {
	case $("$1" -print-file-name=libspeexdsp.a) in
	/*) ;;
	*)
		echo "cross: $1 finds no libspeexdsp.a (make deps installs libspeexdsp-dev:$2)" >&2
		exit 1
		;;
	esac
}

for t in $targets; do
	case $t in
	linux-arm64)
		need aarch64-linux-gnu-gcc
		speexdsp aarch64-linux-gnu-gcc arm64
		set -- GOARCH=arm64 CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ GOFLAGS=-tags=camd_speexdsp
		;;
	linux-armv7)
		need arm-linux-gnueabihf-gcc
		speexdsp arm-linux-gnueabihf-gcc armhf
		set -- GOARCH=arm GOARM=7 CGO_ENABLED=1 CC=arm-linux-gnueabihf-gcc CXX=arm-linux-gnueabihf-g++ GOFLAGS=-tags=camd_speexdsp
		;;
	linux-armv7-lean)
		need arm-linux-gnueabihf-gcc
		set -- GOARCH=arm GOARM=7 CGO_ENABLED=1 CC=arm-linux-gnueabihf-gcc CXX=arm-linux-gnueabihf-g++ \
			CGO_CFLAGS="-Os -g0" GOFLAGS="-tags=camd_nocapture,camd_notzdata,$lean_tags $lean_gcflags"
		;;
	linux-armv6) set -- GOARCH=arm GOARM=6 CGO_ENABLED=0 GOFLAGS="-tags=$lean_tags $lean_gcflags" ;;
	linux-mipsle) set -- GOARCH=mipsle GOMIPS=softfloat CGO_ENABLED=0 GOFLAGS="-tags=$lean_tags $lean_gcflags" ;;
	native-nocgo) set -- CGO_ENABLED=0 GOFLAGS="-tags=$lean_tags $lean_gcflags" ;;
	*)
		echo "cross: unknown target $t (linux-arm64, linux-armv7, linux-armv7-lean, linux-armv6, linux-mipsle, native-nocgo)" >&2
		exit 2
		;;
	esac
	mkdir -p "$out/$t"
	echo "cross: $t" >&2
	env GOOS=linux "$@" "$GO" build -trimpath -ldflags "$ldflags" -o "$out/$t/camd" ./cmd/camd
done

echo
printf '%-17s %12s %9s  %s\n' target bytes MiB codecs
for t in $targets; do
	size=$(wc -c <"$out/$t/camd")
	case $t in
	linux-arm64 | linux-armv7) codecs="openh264, Opus, speexdsp AEC (cgo); V4L2/ALSA capture" ;;
	linux-armv7-lean) codecs="openh264, Opus (cgo); no capture, no tz database, lean inlining" ;;
	*) codecs="none: passthrough only; lean inlining" ;;
	esac
	printf '%-17s %12d %9.2f  %s\n' "$t" "$size" "$(echo "$size" | awk '{print $1 / 1048576}')" "$codecs"
done
echo "version $version, stripped; in $out/TARGET/camd"
