// go-fuse builds on 64-bit Linux only.

//go:build linux && !386 && !arm && !mips && !mipsle

package faultfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const supported = true

// serve mounts backing at mountpoint, answers the client on ctl and rep
// until it closes ctl, then unmounts.
func serve(mountpoint, backing string, o Options, ctl io.Reader, rep io.Writer) error {
	in := &injector{backing: backing}
	ready := json.NewEncoder(rep)
	if o.PowerCut {
		d, err := loadDisk(backing)
		if err != nil {
			ready.Encode(reply{Err: fmt.Sprintf("faultfs: %v", err)})
			return nil
		}
		in.disk = d
	}
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
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
)

// WrapChild makes every node of the tree a faulty one.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if lb, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: lb, in: n.in}
	}
	return ops
}

func (n *node) name() string { return filepath.Base(n.Path(nil)) }

// rel is the node's path from the root ("" for the root).
func (n *node) rel() string { return n.Path(nil) }

// child is the path of the entry name in the directory n.
func (n *node) child(name string) string { return path.Join(n.rel(), name) }

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.in.powered(); errno != 0 {
		return nil, 0, errno
	}
	var fh fs.FileHandle
	var fl uint32
	var ino *inode
	open := func() (errno syscall.Errno) {
		fh, fl, errno = n.LoopbackNode.Open(ctx, flags)
		return errno
	}
	var errno syscall.Errno
	if flags&syscall.O_TRUNC != 0 {
		errno = n.in.change(open, func(d *disk) {
			ino = d.file(n.rel(), n.in.backing)
			ino.truncate(0)
		})
	} else {
		errno = open()
		n.in.record(func(d *disk) { ino = d.file(n.rel(), n.in.backing) })
	}
	if errno != 0 {
		return nil, 0, errno
	}
	return n.wrap(fh, n.name(), ino), fl | fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.in.check(Create, name, 0, -1); errno != 0 {
		return nil, nil, 0, errno
	}
	var ch *fs.Inode
	var fh fs.FileHandle
	var fl uint32
	var ino *inode
	errno := n.in.change(func() (errno syscall.Errno) {
		ch, fh, fl, errno = n.LoopbackNode.Create(ctx, name, flags, mode, out)
		return errno
	}, func(d *disk) {
		ino = d.create(n.child(name))
		if flags&syscall.O_TRUNC != 0 {
			ino.truncate(0)
		}
	})
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, n.wrap(fh, name, ino), fl | fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.in.check(Create, name, 0, -1); errno != 0 {
		return nil, errno
	}
	var ch *fs.Inode
	errno := n.in.change(func() (errno syscall.Errno) {
		ch, errno = n.LoopbackNode.Mkdir(ctx, name, mode, out)
		return errno
	}, func(d *disk) { d.mkdir(n.child(name)) })
	return ch, errno
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.in.change(func() syscall.Errno { return n.LoopbackNode.Unlink(ctx, name) },
		func(d *disk) { d.unlink(n.child(name)) })
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.in.change(func() syscall.Errno { return n.LoopbackNode.Rmdir(ctx, name) },
		func(d *disk) { d.rmdir(n.child(name)) })
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok || (n.in.disk != nil && flags&unix.RENAME_EXCHANGE != 0) {
		return syscall.ENOTSUP
	}
	return n.in.change(func() syscall.Errno { return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags) },
		func(d *disk) { d.rename(n.child(name), np.child(newName)) })
}

// Links, special files and unnamed files are not recorded on a card
// whose power can be cut: refused there.

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.in.disk != nil {
		return nil, syscall.ENOTSUP
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.in.disk != nil {
		return nil, syscall.ENOTSUP
	}
	return n.LoopbackNode.Symlink(ctx, target, name, out)
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.in.disk != nil {
		return nil, syscall.ENOTSUP
	}
	return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
}

// CopyFileRange is refused on every card: a copy goes through reads and
// writes, which the faults and the power cut see.
func (n *node) CopyFileRange(context.Context, fs.FileHandle, uint64, *fs.Inode, fs.FileHandle, uint64, uint64, uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOTSUP
}

func (n *node) Tmpfile(ctx context.Context, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if n.in.disk != nil {
		return nil, nil, 0, syscall.ENOTSUP
	}
	return n.LoopbackNode.Tmpfile(ctx, flags, mode, out)
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	size, sized := in.GetSize()
	if sized {
		if errno := n.in.check(Truncate, n.name(), 0, -1); errno != 0 {
			return errno
		}
	}
	f, _ := fh.(*file)
	if f != nil {
		fh = f.lf
	}
	set := func() syscall.Errno { return n.LoopbackNode.Setattr(ctx, fh, in, out) }
	if !sized {
		return set()
	}
	return n.in.change(set, func(d *disk) {
		ino := d.file(n.rel(), n.in.backing)
		if f != nil && f.ino != nil {
			ino = f.ino
		}
		if ino != nil {
			ino.truncate(int64(size))
		}
	})
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dir{FileHandle: fh, n: n}, fl, 0
}

func (n *node) wrap(fh fs.FileHandle, name string, ino *inode) fs.FileHandle {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return fh
	}
	return &file{lf: lf, in: n.in, name: name, ino: ino}
}

// dir is an open directory: its fsync makes its entries durable on a
// card whose power can be cut.
type dir struct {
	fs.FileHandle
	n *node
}

var (
	_ fs.FileReaddirenter = (*dir)(nil)
	_ fs.FileSeekdirer    = (*dir)(nil)
	_ fs.FileReleasedirer = (*dir)(nil)
	_ fs.FileFsyncdirer   = (*dir)(nil)
)

func (d *dir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.FileHandle.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, syscall.ENOTSUP
}

func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.FileHandle.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dir) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.FileHandle.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

func (d *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if errno := d.n.in.check(Fsync, d.n.name(), 0, -1); errno != 0 {
		return errno
	}
	fsync := func() syscall.Errno {
		if s, ok := d.FileHandle.(fs.FileFsyncdirer); ok {
			return d.n.in.fsync(func() syscall.Errno { return s.Fsyncdir(ctx, flags) })
		}
		return 0
	}
	return d.n.in.change(fsync, func(dk *disk) { dk.fsyncDir(d.n.rel()) })
}

// file is an open file. It does not embed the loopback file: that one
// offers the kernel its descriptor for passthrough, and reads and writes
// would then never reach the faults.
type file struct {
	lf   *fs.LoopbackFile
	in   *injector
	name string
	ino  *inode // on a card whose power can be cut
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
	// Reads go on after a cut (of what the file held before it): a
	// page of a mapping that failed would kill the process, which a
	// cut stands for but must not do in a test.
	return f.lf.Read(ctx, buf, off)
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := f.in.check(Write, f.name, off, int64(len(data))); errno != 0 {
		return 0, errno
	}
	var n uint32
	errno := f.in.change(func() (errno syscall.Errno) {
		n, errno = f.lf.Write(ctx, data, off)
		return errno
	}, func(*disk) {
		if f.ino != nil {
			f.ino.write(off, data[:n])
		}
	})
	return n, errno
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := f.in.check(Fsync, f.name, 0, -1); errno != 0 {
		return errno
	}
	return f.in.change(func() syscall.Errno { return f.in.fsync(func() syscall.Errno { return f.lf.Fsync(ctx, flags) }) }, func(*disk) {
		if f.ino != nil {
			f.ino.fsync()
		}
	})
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if errno := f.in.check(Write, f.name, int64(off), int64(size)); errno != 0 {
		return errno
	}
	return f.in.change(func() syscall.Errno { return f.lf.Allocate(ctx, off, size, mode) }, func(*disk) {
		var out fuse.AttrOut
		if f.ino != nil && f.lf.Getattr(ctx, &out) == 0 {
			f.ino.truncate(int64(out.Size))
		}
	})
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Setattr(ctx, in, out) // size changes: node.Setattr
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
