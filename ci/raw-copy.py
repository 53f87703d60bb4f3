#!/usr/bin/env python3
"""raw-copy.py SRC DEST: copies the InnoDB data files of the data directory
SRC (what a clone carries: *.ibd, *.ibu, ibdata*, undo_*) to DEST (which
must not exist) as fast as this disk allows a plain copy to: every file
whose size is a multiple of 4 KiB is written with O_DIRECT from an aligned
buffer, the others through the page cache, and everything is made durable
once at the end (syncfs). ci/bench.sh prints its time beside the clones of
the same files: how far each plugin is from what the disk allows. Prints
the number of files and bytes copied."""
import ctypes
import mmap
import os
import sys

CHUNK = 8 << 20
ALIGN = 4096


def copy_file(src, dest, buf):
    size = os.stat(src).st_size
    direct = size % ALIGN == 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | (os.O_DIRECT if direct else 0)
    fin = os.open(src, os.O_RDONLY)
    fout = os.open(dest, flags, 0o640)
    try:
        done = 0
        while done < size:
            n = os.readv(fin, [buf])
            if n <= 0:
                raise OSError(f"{src}: short read")
            if direct and n % ALIGN:
                raise OSError(f"{src}: changed during the copy")
            os.write(fout, memoryview(buf)[:n])
            done += n
    finally:
        os.close(fin)
        os.close(fout)
    return size


def is_data_file(name):
    return name.endswith((".ibd", ".ibu")) or name.startswith(("ibdata", "undo_"))


def main():
    src, dest = sys.argv[1], sys.argv[2]
    buf = mmap.mmap(-1, CHUNK)  # page-aligned, as O_DIRECT wants
    files = total = 0
    for root, dirs, names in os.walk(src):
        target = os.path.join(dest, os.path.relpath(root, src))
        os.makedirs(target, exist_ok=root != src)
        for name in names:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path) or not is_data_file(name):
                continue
            total += copy_file(path, os.path.join(target, name), buf)
            files += 1
    fd = os.open(dest, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
    finally:
        os.close(fd)
    print(files, total)


if __name__ == "__main__":
    main()
