#!/usr/bin/python3
"""A FUSE filesystem that loses what was never synced, for power-loss tests (issue 12).

    /usr/bin/python3 test/support/lazyfs.py MOUNTPOINT

Everything lives in memory. Each file has two contents: what programs read and write, and what is
"on the platter": a file's data and size reach the platter only when the file is fsynced (fsync or
fdatasync), and a directory's entries (files created, renamed, removed in it) only when the directory
itself is fsynced, the strict POSIX reading that careful storage engines are written against (a new
file needs an fsync of its directory, a new directory one of its parent).

Writing `drop` to the control file MOUNTPOINT/.lazyfs throws away everything not on the platter, as a
power cut would: contents, sizes and names fall back to what was last synced, files and directories
never synced into their parent vanish, and every open file handle becomes stale. The write returns once
that is done. `drop torn SEED` first lets a random half of the pages (4 KiB) that unsynced writes touched reach the
platter, each whole as it is now, in no particular order, as a page cache that wrote some dirty pages
back before the power went (a later page without an earlier one leaves a hole of zeros). Reading the control file gives one line, `drops N unsynced_bytes N`, the bytes written
since their file's last fsync.

The kernel caches nothing (direct_io, zero entry and attribute timeouts), so the first read after a drop
sees the platter. Runs in the foreground until unmounted (umount MOUNTPOINT); needs root or fusermount.
Like Jepsen's lazyfs, but smaller: faults only on command.
"""

import errno
import random
import stat
import sys
import threading
import time

import fusepy

CONTROL = "/.lazyfs"
PAGE = 4096


class Node:
    """A file or directory: its current state and its state on the platter."""

    def __init__(self, mode):
        self.mode = mode
        now = time.time()
        self.times = [now, now, now]  # atime, mtime, ctime
        if stat.S_ISDIR(mode):
            self.entries = {}  # name -> Node, as programs see it
            self.synced_entries = {}  # name -> Node, on the platter
        else:
            self.data = bytearray()
            self.synced_data = bytearray()
            self.unsynced = []  # ("w", offset, bytes) or ("t", length), since the last fsync
            self.unsynced_bytes = 0

    def is_dir(self):
        return stat.S_ISDIR(self.mode)


def apply_write(buffer, offset, data):
    if offset > len(buffer):
        buffer.extend(b"\0" * (offset - len(buffer)))
    buffer[offset:offset + len(data)] = data


def apply_truncate(buffer, length):
    if length < len(buffer):
        del buffer[length:]
    else:
        buffer.extend(b"\0" * (length - len(buffer)))


class LazyFS:
    use_ns = True

    def __init__(self):
        self.mutex = threading.Lock()  # one operation at a time: simple, and fast enough for tests
        self.root = Node(stat.S_IFDIR | 0o755)
        self.handles = {}  # fh -> Node, so writes to an open file that was renamed or removed still land
        self.next_fh = 1
        self.drops = 0

    def __call__(self, op, *args):
        with self.mutex:
            return getattr(self, op)(*args)

    # ---- helpers --------------------------------------------------------------------------------

    def lookup(self, path):
        node = self.root
        for part in path.strip("/").split("/"):
            if not part:
                continue
            if not node.is_dir() or part not in node.entries:
                raise fusepy.FuseOSError(errno.ENOENT)
            node = node.entries[part]
        return node

    def parent_of(self, path):
        head, _, name = path.rstrip("/").rpartition("/")
        parent = self.lookup(head or "/")
        if not parent.is_dir():
            raise fusepy.FuseOSError(errno.ENOTDIR)
        return parent, name

    def node_of(self, path, fh):
        if fh:
            if fh not in self.handles:
                raise fusepy.FuseOSError(errno.ESTALE)  # opened before a drop
            return self.handles[fh]
        return self.lookup(path)

    def new_handle(self, node):
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = node
        return fh

    def status(self):
        unsynced = 0
        seen = set()
        stack = [self.root]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.is_dir():
                stack.extend(node.entries.values())
            else:
                unsynced += node.unsynced_bytes
        return ("drops %d unsynced_bytes %d\n" % (self.drops, unsynced)).encode()

    @staticmethod
    def tear(node, rng):
        """Each page the unsynced writes touched reaches the platter whole, as it is now, or not at all."""
        pages = set()
        for change in node.unsynced:
            if change[0] == "w" and change[2]:
                pages.update(range(change[1] // PAGE, (change[1] + len(change[2]) - 1) // PAGE + 1))
        current, synced = node.data, node.synced_data
        if len(current) < len(synced) and rng.random() < 0.5:
            del synced[len(current):]  # a truncation that made it
        for page in sorted(pages):
            start, end = page * PAGE, min(len(current), (page + 1) * PAGE)
            if start < end and rng.random() < 0.5:
                apply_write(synced, start, current[start:end])

    def drop(self, rng=None):
        """Everything falls back to the platter, from the root down through synced entries."""
        stack = [self.root]
        seen = set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.is_dir():
                node.entries = dict(node.synced_entries)
                stack.extend(node.entries.values())
            else:
                if rng is not None:
                    self.tear(node, rng)
                node.data = bytearray(node.synced_data)
                node.unsynced = []
                node.unsynced_bytes = 0
        self.handles.clear()
        self.drops += 1

    # ---- FUSE operations ------------------------------------------------------------------------

    def init(self, path):
        # The line a test waits for: from here on the mount answers.
        print("lazyfs: mounted", file=sys.stderr, flush=True)

    def getattr(self, path, fh=None):
        if path == CONTROL:
            return dict(st_mode=stat.S_IFREG | 0o600, st_nlink=1, st_size=len(self.status()))
        node = self.node_of(path, fh)
        size = 4096 if node.is_dir() else len(node.data)
        atime, mtime, ctime = (int(t * 1e9) for t in node.times)
        return dict(st_mode=node.mode, st_nlink=2 if node.is_dir() else 1, st_size=size,
                    st_blocks=(size + 511) // 512, st_atime=atime, st_mtime=mtime, st_ctime=ctime)

    def access(self, path, amode):
        if path != CONTROL:
            self.lookup(path)
        return 0

    def statfs(self, path):
        return dict(f_bsize=4096, f_frsize=4096, f_blocks=1 << 20, f_bfree=1 << 19, f_bavail=1 << 19,
                    f_files=1 << 20, f_ffree=1 << 19, f_favail=1 << 19, f_namemax=255)

    def readdir(self, path, fh):
        node = self.lookup(path)
        if not node.is_dir():
            raise fusepy.FuseOSError(errno.ENOTDIR)
        names = [".", ".."] + sorted(node.entries)
        if path == "/":
            names.append(CONTROL[1:])
        return names

    def opendir(self, path):
        if not self.lookup(path).is_dir():
            raise fusepy.FuseOSError(errno.ENOTDIR)
        return 0

    def releasedir(self, path, fh):
        return 0

    def fsyncdir(self, path, datasync, fh):
        node = self.lookup(path)
        node.synced_entries = dict(node.entries)
        return 0

    def mkdir(self, path, mode):
        parent, name = self.parent_of(path)
        if name in parent.entries:
            raise fusepy.FuseOSError(errno.EEXIST)
        parent.entries[name] = Node(stat.S_IFDIR | (mode & 0o7777))
        return 0

    def rmdir(self, path):
        parent, name = self.parent_of(path)
        node = parent.entries.get(name)
        if node is None:
            raise fusepy.FuseOSError(errno.ENOENT)
        if not node.is_dir():
            raise fusepy.FuseOSError(errno.ENOTDIR)
        if node.entries:
            raise fusepy.FuseOSError(errno.ENOTEMPTY)
        del parent.entries[name]
        return 0

    def create(self, path, mode, fi=None):
        if path == CONTROL:
            raise fusepy.FuseOSError(errno.EEXIST)
        parent, name = self.parent_of(path)
        node = parent.entries.get(name)
        if node is None:
            node = parent.entries[name] = Node(stat.S_IFREG | (mode & 0o7777))
        return self.new_handle(node)

    def open(self, path, flags):
        if path == CONTROL:
            return 0
        node = self.lookup(path)
        if node.is_dir():
            raise fusepy.FuseOSError(errno.EISDIR)
        return self.new_handle(node)

    def release(self, path, fh):
        self.handles.pop(fh, None)
        return 0

    def flush(self, path, fh):
        return 0  # close() is not a sync

    def read(self, path, size, offset, fh):
        if path == CONTROL:
            return self.status()[offset:offset + size]
        node = self.node_of(path, fh)
        return bytes(node.data[offset:offset + size])

    def write(self, path, data, offset, fh):
        if path == CONTROL:
            words = data.decode(errors="replace").split()
            if words == ["drop"]:
                self.drop()
            elif len(words) == 3 and words[:2] == ["drop", "torn"] and words[2].isdigit():
                self.drop(random.Random(int(words[2])))
            else:
                raise fusepy.FuseOSError(errno.EINVAL)
            return len(data)
        node = self.node_of(path, fh)
        apply_write(node.data, offset, data)
        node.unsynced.append(("w", offset, bytes(data)))
        node.unsynced_bytes += len(data)
        node.times[1] = time.time()
        return len(data)

    def truncate(self, path, length, fh=None):
        if path == CONTROL:
            return 0
        node = self.node_of(path, fh)
        apply_truncate(node.data, length)
        node.unsynced.append(("t", length))
        return 0

    def fsync(self, path, datasync, fh):
        if path == CONTROL:
            return 0
        node = self.node_of(path, fh)
        for change in node.unsynced:
            if change[0] == "w":
                apply_write(node.synced_data, change[1], change[2])
            else:
                apply_truncate(node.synced_data, change[1])
        node.unsynced = []
        node.unsynced_bytes = 0
        return 0

    def unlink(self, path):
        parent, name = self.parent_of(path)
        node = parent.entries.get(name)
        if node is None:
            raise fusepy.FuseOSError(errno.ENOENT)
        if node.is_dir():
            raise fusepy.FuseOSError(errno.EISDIR)
        del parent.entries[name]
        return 0

    def rename(self, old, new):
        old_parent, old_name = self.parent_of(old)
        new_parent, new_name = self.parent_of(new)
        node = old_parent.entries.get(old_name)
        if node is None:
            raise fusepy.FuseOSError(errno.ENOENT)
        target = new_parent.entries.get(new_name)
        if target is not None and target.is_dir() != node.is_dir():
            raise fusepy.FuseOSError(errno.EISDIR if target.is_dir() else errno.ENOTDIR)
        if target is not None and target.is_dir() and target.entries:
            raise fusepy.FuseOSError(errno.ENOTEMPTY)
        del old_parent.entries[old_name]
        new_parent.entries[new_name] = node
        return 0

    def chmod(self, path, mode):
        node = self.lookup(path)
        node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
        return 0

    def chown(self, path, uid, gid):
        return 0

    def utimens(self, path, times=None):
        node = self.lookup(path)
        if times is None:
            now = time.time()
            node.times[0] = node.times[1] = now
        else:
            node.times[0], node.times[1] = times[0] / 1e9, times[1] / 1e9
        return 0


def main():
    if len(sys.argv) != 2:
        print("usage: lazyfs.py MOUNTPOINT", file=sys.stderr)
        return 2
    fusepy.FUSE(LazyFS(), sys.argv[1], foreground=True, nothreads=False, direct_io=True,
                entry_timeout=0, attr_timeout=0, negative_timeout=0, default_permissions=True,
                fsname="lazyfs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
