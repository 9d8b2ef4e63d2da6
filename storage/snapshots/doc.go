// Package snapshots keeps saved snapshots ("screenshots"): JPEG pictures
// taken on demand or at the start of a motion span, in a bbolt file of
// their own (snapshots.db) bounded in bytes. Each snapshot counts against
// one share of the bound, by who took it: motion (camd, at the start of a
// motion span), owner or viewer (a user who saved it). A save forgets the
// oldest snapshots of its own share when it would pass that share's
// bound, never those of another: a viewer saving pictures in a loop
// cannot push out the owner's or the motion events' pictures. A damaged
// file is moved aside and a new one started, as the catalog does; a file
// that cannot be read is left as it is.
package snapshots
