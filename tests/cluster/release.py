"""Pack a k3s-upstream "release" and local OCI images (no registry), for tests/cluster and
tests/gpu-host. Standard library only (it also runs on the GPU host).

  release.py pack --binary K8S_UPSTREAM --payload-dir DIR --out FILE
      FILE = the k8s-upstream binary + tar.gz of DIR's files + trailer (the format
      tests/upstream/cluster/internal/launcher/payload.go reads; its digest covers binary
      and payload); prints FILE's sha256.

  release.py image --out ARCHIVE.tar IMAGE_SPEC.json [IMAGE_SPEC.json ...]
      an OCI image-layout archive holding one image per spec, importable with
      `ctr images import` (K3s's airgap image tarball format). A spec:
        {"name": "k3s-upstream.local/pause:v1", "files": {"/pause": "/path/on/disk"},
         "debs": ["pkg.deb"], "entrypoint": ["/pause"], "cmd": [], "env": ["PATH=/bin"],
         "links": {"/bin/sh": "busybox"}, "dirs": ["/tmp"]}
      "debs" are unpacked (dpkg-deb -x) into the layer; "files" are copied (mode kept).
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

MAGIC = b"K3SUPAY1"
EPOCH = 0  # fixed mtimes: the same inputs give the same archive


def _reset(info):
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def pack(args):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=EPOCH, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name in sorted(os.listdir(args.payload_dir)):
                path = os.path.join(args.payload_dir, name)
                tar.add(path, arcname="bin/" + name, filter=_reset)
    payload = buf.getvalue()
    # The digest names the folder the release unpacks into: it covers the binary and the
    # payload, so that two releases with the same payload never share one.
    digest = hashlib.sha256()
    with open(args.binary, "rb") as elf:
        for block in iter(lambda: elf.read(1 << 20), b""):
            digest.update(block)
    digest.update(payload)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as out, open(args.binary, "rb") as elf:
        shutil.copyfileobj(elf, out)
        out.write(payload)
        out.write(MAGIC + struct.pack("<Q", len(payload)) + digest.digest())
    os.chmod(tmp, 0o755)
    os.replace(tmp, args.out)
    with open(args.out, "rb") as f:
        print(hashlib.sha256(f.read()).hexdigest())


def _blob(layout, data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def _layer(spec, work):
    root = tempfile.mkdtemp(dir=work)
    for deb in spec.get("debs", []):
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    for d in ("bin", "sbin", "lib", "lib64"):
        # merged /usr (Debian 13 packages): the links base-files would make
        if os.path.isdir(os.path.join(root, "usr", d)) and not os.path.lexists(os.path.join(root, d)):
            os.symlink("usr/" + d, os.path.join(root, d))
    for d in spec.get("dirs", []):
        os.makedirs(os.path.join(root, d.lstrip("/")), exist_ok=True)
    for dest, src in spec.get("files", {}).items():
        target = os.path.join(root, dest.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(src, target)
    for dest, src in spec.get("links", {}).items():
        target = os.path.join(root, dest.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            os.remove(target)
        os.symlink(src, target)
    for junk in ("usr/share/doc", "usr/share/man", "usr/share/lintian", "usr/share/locale"):
        shutil.rmtree(os.path.join(root, junk), ignore_errors=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                tar.add(full, arcname=os.path.relpath(full, root), recursive=False, filter=_reset)
    shutil.rmtree(root)
    diff = raw.getvalue()
    comp = io.BytesIO()
    with gzip.GzipFile(fileobj=comp, mode="wb", mtime=EPOCH) as gz:
        gz.write(diff)
    return comp.getvalue(), "sha256:" + hashlib.sha256(diff).hexdigest()


def image(args):
    work = tempfile.mkdtemp()
    layout = os.path.join(work, "layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    manifests = []
    try:
        for spec_path in args.specs:
            with open(spec_path) as f:
                spec = json.load(f)
            layer, diff_id = _layer(spec, work)
            layer_desc = _blob(layout, layer, "application/vnd.oci.image.layer.v1.tar+gzip")
            config = {
                "architecture": "amd64", "os": "linux",
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH)),
                "config": {"Env": spec.get("env", ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
                           "Entrypoint": spec.get("entrypoint"), "Cmd": spec.get("cmd"),
                           "Labels": {"org.opencontainers.image.description": spec.get("description", "built locally by tests/cluster/release.py")}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
            config_desc = _blob(layout, json.dumps(config, sort_keys=True).encode(),
                                "application/vnd.oci.image.config.v1+json")
            manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": config_desc, "layers": [layer_desc]}
            desc = _blob(layout, json.dumps(manifest, sort_keys=True).encode(),
                         "application/vnd.oci.image.manifest.v1+json")
            name = spec["name"]
            desc["annotations"] = {"io.containerd.image.name": name,
                                   "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}
            desc["platform"] = {"architecture": "amd64", "os": "linux"}
            manifests.append(desc)
            print("%s: layer %d KiB" % (name, len(layer) // 1024))
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}, f, sort_keys=True)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        tmp = args.out + ".tmp"
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in ("oci-layout", "index.json", "blobs"):
                tar.add(os.path.join(layout, name), arcname=name, filter=_reset)
        os.replace(tmp, args.out)
    finally:
        shutil.rmtree(work)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--binary", required=True)
    p.add_argument("--payload-dir", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=pack)
    i = sub.add_parser("image")
    i.add_argument("--out", required=True)
    i.add_argument("specs", nargs="+")
    i.set_defaults(func=image)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
