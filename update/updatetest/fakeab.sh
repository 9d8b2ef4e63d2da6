#!/bin/sh
# fakeab DIR VERB [IMAGE]: a fake A/B layout in DIR, kept as RAUC keeps its
# slots: slot-a and slot-b hold images, primary names the slot marked
# good, booted the one running, next a slot to boot once (an update
# not yet marked good). A file fail-VERB in DIR makes VERB fail.
set -eu
dir=$1
verb=$2
if [ -e "$dir/fail-$verb" ]; then
	echo "fakeab: $verb failed (as asked)" >&2
	exit 1
fi
booted=$(cat "$dir/booted")
other=a
[ "$booted" = a ] && other=b
case $verb in
install)
	cp "$3" "$dir/slot-$other.tmp"
	mv "$dir/slot-$other.tmp" "$dir/slot-$other"
	echo "$other" >"$dir/next"
	;;
mark-good) echo "$booted" >"$dir/primary" ;;
rollback) rm -f "$dir/next" ;;
reboot)
	if [ -e "$dir/next" ]; then
		mv "$dir/next" "$dir/booted"
	else
		cp "$dir/primary" "$dir/booted"
	fi
	echo reboot >>"$dir/reboots"
	;;
*)
	echo "fakeab: unknown verb $verb" >&2
	exit 2
	;;
esac
