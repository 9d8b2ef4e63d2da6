// go-fuse builds on 64-bit Linux only.

//go:build linux && !386 && !arm && !mips && !mipsle

package faultfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

const supported = true

// serve mounts backing at mountpoint, answers the client on ctl and rep
// until it closes ctl, then unmounts.
func serve(mountpoint, backing string, ctl io.Reader, rep io.Writer) error {
	in := &injector{}
	ready := json.NewEncoder(rep)
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		ready.Encode(reply{Err: fmt.Sprintf("faultfs: %v", err)})
		return nil
	}
	lb, ok := root.(*fs.LoopbackNode)
	if !ok {
		return errors.New("faultfs: unexpected loopback root")
	}
	// No attribute or entry caching: every stat and lookup reaches the
	// file system. File data stays in the page cache as it would on a
	// card (kept when a file is opened, not dropped when its time stamps
	// change) until reclaim or fadvise drops it.
	var zero time.Duration
	srv, err := fs.Mount(mountpoint, &node{LoopbackNode: lb, in: in}, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:        "faultfs",
			Name:          "faultfs",
			DirectMount:   true,
			DisableXAttrs: true,
			// Without this, every change of a file's mtime that a
			// stat sees drops its cached pages.
			ExplicitDataCacheControl: true,
		},
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
	})
	if err != nil {
		ready.Encode(reply{Err: fmt.Sprintf("faultfs: mount %s: %v", mountpoint, err)})
		return nil
	}
	ready.Encode(reply{Hits: in.counts()})
	control(in, ctl, rep)
	if err := srv.Unmount(); err != nil {
		// Files still open (a process that keeps its volume open):
		// detach; they fail with ENOTCONN once this process exits.
		return detach(mountpoint)
	}
	return nil
}

// node is a loopback node whose files inject the faults.
type node struct {
	*fs.LoopbackNode
	in *injector
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
	_ fs.NodeMkdirer     = (*node)(nil)
	_ fs.NodeSetattrer   = (*node)(nil)
)

// WrapChild makes every node of the tree a faulty one.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if lb, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: lb, in: n.in}
	}
	return ops
}

func (n *node) name() string { return filepath.Base(n.Path(nil)) }

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return n.wrap(fh, n.name()), fl | fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.in.check(Create, name, 0, -1); errno != 0 {
		return nil, nil, 0, errno
	}
	ch, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, n.wrap(fh, name), fl | fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.in.check(Create, name, 0, -1); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		if errno := n.in.check(Truncate, n.name(), 0, -1); errno != 0 {
			return errno
		}
	}
	if f, ok := fh.(*file); ok {
		fh = f.lf
	}
	return n.LoopbackNode.Setattr(ctx, fh, in, out)
}

func (n *node) wrap(fh fs.FileHandle, name string) fs.FileHandle {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return fh
	}
	return &file{lf: lf, in: n.in, name: name}
}

// file is an open file. It does not embed the loopback file: that one
// offers the kernel its descriptor for passthrough, and reads and writes
// would then never reach the faults.
type file struct {
	lf   *fs.LoopbackFile
	in   *injector
	name string
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileFsyncer   = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileSetattrer = (*file)(nil)
	_ fs.FileLseeker   = (*file)(nil)
	_ fs.FileAllocater = (*file)(nil)
)

func (f *file) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := f.in.check(Read, f.name, off, int64(len(buf))); errno != 0 {
		return nil, errno
	}
	return f.lf.Read(ctx, buf, off)
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := f.in.check(Write, f.name, off, int64(len(data))); errno != 0 {
		return 0, errno
	}
	return f.lf.Write(ctx, data, off)
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := f.in.check(Fsync, f.name, 0, -1); errno != 0 {
		return errno
	}
	return f.lf.Fsync(ctx, flags)
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if errno := f.in.check(Write, f.name, int64(off), int64(size)); errno != 0 {
		return errno
	}
	return f.lf.Allocate(ctx, off, size, mode)
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Setattr(ctx, in, out)
}

func (f *file) Flush(ctx context.Context) syscall.Errno   { return f.lf.Flush(ctx) }
func (f *file) Release(ctx context.Context) syscall.Errno { return f.lf.Release(ctx) }

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Getattr(ctx, out)
}

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.lf.Lseek(ctx, off, whence)
}

// detach unmounts lazily: the mount goes at once, open files fail with
// ENOTCONN once the server is gone.
func detach(dir string) error { return syscall.Unmount(dir, syscall.MNT_DETACH) }
