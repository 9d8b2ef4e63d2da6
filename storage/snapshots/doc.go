// Package snapshots keeps saved snapshots ("screenshots"): JPEG pictures
// taken on demand or at the start of a motion span, in a bbolt file of
// their own (snapshots.db) bounded in bytes. The oldest are forgotten when
// a new one would pass the bound. A damaged file is moved aside and a new
// one started, as the catalog does.
package snapshots
