#!/bin/sh
# make install: puts camd into a root filesystem with FHS paths.
#
# usage: packaging/install.sh BINARY [DESTDIR]
#   INIT=systemd (default) installs /lib/systemd/system/camd.service;
#   INIT=busybox installs /etc/init.d/S90camd instead (not both: systemd
#   would also run the init script).
# An existing /etc/camd/camd.yaml is kept (the integrator's).
set -eu
cd "$(dirname "$0")"
bin=${1:?usage: install.sh BINARY [DESTDIR]}
case $bin in /*) ;; *) bin=../$bin ;; esac
root=${2:-}
init=${INIT:-systemd}

install -D -m 0755 "$bin" "$root/usr/bin/camd"
install -d -m 0755 "$root/etc/camd"
if [ ! -e "$root/etc/camd/camd.yaml" ]; then
	install -m 0644 camd.yaml "$root/etc/camd/camd.yaml"
fi
install -d -m 0700 "$root/var/lib/camd"
case $init in
systemd) install -D -m 0644 camd.service "$root/lib/systemd/system/camd.service" ;;
busybox) install -D -m 0755 S90camd "$root/etc/init.d/S90camd" ;;
*)
	echo "install: INIT=$init: want systemd or busybox" >&2
	exit 2
	;;
esac
echo "installed camd ($init) into ${root:-/}"
