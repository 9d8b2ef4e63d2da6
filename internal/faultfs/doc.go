// Package faultfs is a loopback file system over a directory whose
// reads, writes, fsyncs, truncations and creations can be made to fail
// (EIO, ENOSPC, ...) or to stall while a test runs: the stand-in for an
// SD card that is going bad, which tmpfs cannot imitate. Tests only; it
// needs 64-bit Linux (go-fuse), /dev/fuse and root (or
// fusermount3).
//
// The FUSE server runs in a child process, the test binary started again:
// a process must not serve a file system that it memory-maps files from
// (bbolt does), because a page fault in the mapping waits for the server
// while a garbage collection waits for the faulting thread. A package
// that mounts one declares the test that the child runs:
//
//	func TestFaultFSServer(t *testing.T) { faultfs.Serve(t) }
//
// In an ordinary run that test skips itself.
//
// With Options.PowerCut the card's power can be cut: the file system
// also remembers what of what it holds is durable (a file's data and
// size once the file is fsynced, a directory's entries once the
// directory is), and Cut leaves only that in the backing directory and
// fails every operation from then on; PowerUp mounts it again. CutAfter
// cuts at the n-th operation that changes the card (a crash-point
// sweep), CutPartly keeps, as a real card may, a random part of what was
// not durable yet.
//
// Everything goes through the server (no passthrough, no attribute
// cache), so a fault reaches the caller the way a failing card's does:
// write(2), fsync(2) and fdatasync(2) return the error, read(2) too, and
// a page of a memory-mapped file that the page cache does not hold faults
// (SIGBUS). Pages the page cache already holds are read without asking
// the file system, as on a real card: opening a file keeps them (so a
// test that changes a file in the backing directory behind the mount
// must drop them itself, with fadvise DONTNEED).
package faultfs
