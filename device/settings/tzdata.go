//go:build !camd_notzdata

package settings

// Cameras' root filesystems seldom carry /usr/share/zoneinfo, and the
// time zone setting must work without it: the zone database is linked in
// (about 400 KB). An integrator whose image has /usr/share/zoneinfo can
// build with -tags camd_notzdata.
import _ "time/tzdata"
