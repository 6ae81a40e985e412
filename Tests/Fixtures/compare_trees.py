#!/usr/bin/env python3
"""Compares two unpacked root filesystems: the file list, types, modes, uid/gid, sizes, contents,
symlink targets and hard-link identity (mtimes are not compared). Device nodes are left out:
fnrunner skips them by design where umoci (as root) creates them. Prints differences; exit 1 if any."""
import hashlib, os, stat, sys


def scan(root):
    files, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                continue
            entry = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid]
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    entry += [st.st_size, hashlib.sha256(f.read()).hexdigest()]
                inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(path))
            files[rel] = entry
    links = sorted(sorted(v) for v in inodes.values() if len(v) > 1)
    return files, links


a, alinks = scan(sys.argv[1])
b, blinks = scan(sys.argv[2])
diffs = [f"only in {sys.argv[1]}: {p}" for p in sorted(a.keys() - b.keys())]
diffs += [f"only in {sys.argv[2]}: {p}" for p in sorted(b.keys() - a.keys())]
diffs += [f"differs: {p}: {a[p]} vs {b[p]}" for p in sorted(a.keys() & b.keys()) if a[p] != b[p]]
if alinks != blinks:
    diffs.append(f"hard links differ: {alinks} vs {blinks}")
print("\n".join(diffs) if diffs else f"identical: {len(a)} entries, {len(alinks)} hard-link groups")
sys.exit(1 if diffs else 0)
