#!/usr/bin/env python3
"""Builds image fixtures for the OCIImage tests, offline: OCI layouts with gzip, zstd and plain
layers, whiteouts, opaque directories, hard links and symlinks; a nested index; and hostile layer
tarballs. Usage: make_images.py OUTDIR BUSYBOX"""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile

out, busybox = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


def member(name, data=b"", mode=0o644, uid=0, gid=0, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, 1700000000
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(raw, how):
    if how == "gzip":
        return gzip.compress(raw, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=raw, stdout=subprocess.PIPE, check=True).stdout
    return raw


MEDIA = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
         "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
         "none": "application/vnd.oci.image.layer.v1.tar"}


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(f"{path}/blobs/sha256", exist_ok=True)
        with open(f"{path}/oci-layout", "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.entries = []

    def blob(self, data):
        d = hashlib.sha256(data).hexdigest()
        with open(f"{self.path}/blobs/sha256/{d}", "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    def image(self, layers, config=None):
        """layers: list of (members, compression); returns the manifest descriptor."""
        descs, diff_ids = [], []
        for members, how in layers:
            raw = tar_bytes(members)
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            descs.append(dict(mediaType=MEDIA[how], **self.blob(compress(raw, how))))
        cfg = {"architecture": "amd64", "os": "linux", "config": config or {},
               "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        cdesc = dict(mediaType="application/vnd.oci.image.config.v1+json", **self.blob(json.dumps(cfg).encode()))
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cdesc, "layers": descs}
        return dict(mediaType=manifest["mediaType"], **self.blob(json.dumps(manifest).encode()))

    def tag(self, desc, name):
        self.entries.append(dict(desc, annotations={"org.opencontainers.image.ref.name": name}))

    def save(self):
        with open(f"{self.path}/index.json", "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": self.entries}, f)


with open(busybox, "rb") as f:
    bb = f.read()
base = [member("bin/", kind=tarfile.DIRTYPE, mode=0o755), member("bin/busybox", bb, mode=0o755)]
base += [member(f"bin/{a}", kind=tarfile.SYMTYPE, link="busybox") for a in ("sh", "ls", "cat", "id", "stat", "echo")]
base += [member("etc/", kind=tarfile.DIRTYPE, mode=0o755),
         member("etc/passwd", b"root:x:0:0:root:/:/bin/sh\napp:x:1234:2345::/:/bin/sh\n"),
         member("etc/group", b"root:x:0:\napps:x:2345:\nstaff:x:50:\n")]
for d in ("proc", "dev", "sys", "tmp"):
    base.append(member(d + "/", kind=tarfile.DIRTYPE, mode=0o755))

# "layers": whiteouts, opaque dir, hard links, symlinks, ownership, modes; gzip + zstd + plain.
l1 = base + [
    member("d/", kind=tarfile.DIRTYPE, mode=0o750, uid=1234, gid=2345),
    member("d/x", b"x from layer 1\n"), member("d/y", b"y from layer 1\n"),
    member("gone", b"deleted by layer 2\n"), member("keep", b"kept\n", mode=0o4755, uid=1234, gid=2345),
    member("keep-link", kind=tarfile.LNKTYPE, link="keep"),
    member("abs", kind=tarfile.SYMTYPE, link="/bin/busybox"), member("rel", kind=tarfile.SYMTYPE, link="keep"),
    member("fifo", kind=tarfile.FIFOTYPE, mode=0o600),
    member("dev/evil-null", kind=tarfile.CHRTYPE, mode=0o666),
]
l2 = [member(".wh.gone"), member("d/", kind=tarfile.DIRTYPE, mode=0o755), member("d/.wh..wh..opq"),
      member("d/z", b"z from layer 2\n")]
l3 = [member("new/", kind=tarfile.DIRTYPE, mode=0o755), member("new/file", b"layer 3\n", mode=0o600, uid=7, gid=8)]

lay = Layout(f"{out}/layers")
lay.tag(lay.image([(l1, "gzip"), (l2, "zstd"), (l3, "none")],
                  {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo ok"], "Env": ["PATH=/bin", "FROM_IMAGE=1"],
                   "WorkingDir": "/d", "User": "app"}), "1")
# The same content with gzip only, for umoci 0.4.7 (no zstd) in the differential test.
lay.tag(lay.image([(l1, "gzip"), (l2, "gzip"), (l3, "gzip")], {"Cmd": ["/bin/sh"]}), "1-gzip")
lay.tag(lay.image([(base, "gzip")], {"Cmd": ["/bin/sh"], "Volumes": {"/data": {}}}), "volumes")
lay.save()

# "nested": an index whose only entry is an index of two platforms.
nest = Layout(f"{out}/nested")
amd = nest.image([(base + [member("platform", b"amd64\n")], "gzip")], {"Cmd": ["/bin/cat", "/platform"]})
arm = nest.image([(base + [member("platform", b"arm64\n")], "gzip")], {"Cmd": ["/bin/cat", "/platform"]})
inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    dict(arm, platform={"architecture": "arm64", "os": "linux"}),
    dict(amd, platform={"architecture": "amd64", "os": "linux"})]}
nest.tag(dict(mediaType=inner["mediaType"], **nest.blob(json.dumps(inner).encode())), "multi")
nest.save()

# Hostile and odd single layers (plain tar, or gzip where named).
os.makedirs(f"{out}/hostile", exist_ok=True)
hostdir = sys.argv[3] if len(sys.argv) > 3 else "/tmp"
hostile = {
    "dotdot": [member("../escaped", b"evil\n")],
    "dotdot-deep": [member("a/", kind=tarfile.DIRTYPE), member("a/../../escaped", b"evil\n")],
    "symlink-escape": [member("link", kind=tarfile.SYMTYPE, link=hostdir), member("link/pwned", b"evil\n")],
    "hardlink-dotdot": [member("hl", kind=tarfile.LNKTYPE, link="../../../../etc/hostname")],
    "hardlink-through-symlink": [member("s", kind=tarfile.SYMTYPE, link="/etc"),
                                 member("h", kind=tarfile.LNKTYPE, link="s/hostname")],
    "whiteout-through-symlink": [member("s", kind=tarfile.SYMTYPE, link=hostdir), member("s/.wh.victim")],
    "hardlink-to-symlink": [member("s", kind=tarfile.SYMTYPE, link=hostdir + "/file"),
                            member("h", kind=tarfile.LNKTYPE, link="s", mode=0o4777)],
}
for name, members in hostile.items():
    raw = tar_bytes(members)
    with open(f"{out}/hostile/{name}.tar", "wb") as f:
        f.write(raw)
# trusted.* xattrs steer overlayfs; they must not come from an image.
xattr_dir, _ = member("d/", kind=tarfile.DIRTYPE)
xattr_dir.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.kept": "yes"}
with open(f"{out}/hostile/trusted-xattr.tar", "wb") as f:
    f.write(tar_bytes([(xattr_dir, None), member("d/f", b"x")]))
# Absolute names are contained (made relative), not refused.
with open(f"{out}/hostile/absolute.tar", "wb") as f:
    f.write(tar_bytes([member("/abs-file", b"contained\n")]))
# A layer cut right after its last member's data: no padding, no end marker (umoci 0.4.7 insert).
full = tar_bytes([member("a", b"first\n"), member("b", b"second file, 25 bytes..\n")])
with tarfile.open(fileobj=io.BytesIO(full)) as t:
    last = t.getmembers()[-1]
    cut = full[: last.offset_data + last.size]
with open(f"{out}/hostile/truncated-at-boundary.tar", "wb") as f:
    f.write(cut)
with open(f"{out}/hostile/truncated-at-boundary.diffid", "w") as f:
    f.write("sha256:" + hashlib.sha256(cut).hexdigest())
# Cut in the middle of a member's data: must fail.
with open(f"{out}/hostile/truncated-mid-member.tar", "wb") as f:
    f.write(full[: last.offset_data + 5])
# A gzip stream with a flipped byte in the middle.
plain = tar_bytes([member("f", os.urandom(20000))])
gz = bytearray(gzip.compress(plain))
gz[len(gz) // 2] ^= 0xFF
with open(f"{out}/hostile/corrupt.diffid", "w") as f:
    f.write("sha256:" + hashlib.sha256(plain).hexdigest())
with open(f"{out}/hostile/corrupt.tar.gz", "wb") as f:
    f.write(bytes(gz))
print("ok")
