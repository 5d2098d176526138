"""Build STAND-IN NVIDIA driver packages for Debian 12 and a signed apt repository of them.

The driver-upgrade scenario needs two driver versions to upgrade between (and a broken
third), which Debian's archive does not offer side by side, and a container cannot load a
kernel module anyway. These packages carry the names and the dependency shape of Debian's
non-free driver packages (nvidia-smi and libcuda1 depend on libnvidia-ml1 of their exact
version; nvidia-persistenced has a version of its own) but no NVIDIA code:

* nvidia-smi is a shell script that answers ``-q -x`` with the XML of one stand-in GPU and
  the driver version of its package, ``-L`` with one GPU line, and creates /dev/nvidiactl and
  /dev/nvidia0 when they are missing (as nvidia-modprobe does for a loaded driver);
* the libraries (libcuda.so.<version>, libnvidia-ml.so.<version> and their SONAME links) are
  text files, so that a CDI spec names the driver version in its mounts as a real one does;
* nvidia-persistenced ships a unit that only sleeps;
* 535.900.03 is BROKEN on purpose: its nvidia-smi says "Driver/library version mismatch".

Writes, under OUT:
  repo/debian/dists/bookworm{,-updates}/   a flat-free apt repository (Release, InRelease,
                                           contrib/non-free/non-free-firmware Packages)
  repo/debian/pool/                        the packages
  repo/standin-driver.gpg                  the throwaway key that signs it (binary keyring)
  repo.tar.gz                              repo/ in one archive, for the copy into the instances
  fingerprint                              fingerprint of that key

Usage: build_standin_driver_repo.py OUT   (needs dpkg-deb and gpg; rebuilds only when
OUT/fingerprint is missing)
"""

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

DRIVER_VERSIONS = ["535.900.01", "535.900.02", "535.900.03"]
BROKEN = "535.900.03"
PERSISTENCED_VERSION = "535.171.04-1~standin1"
DEB_SUFFIX = "-1~standin1"
ARCH = "amd64"
SUITES = ["bookworm", "bookworm-updates"]
COMPONENTS = ["contrib", "non-free", "non-free-firmware"]
LIBDIR = "usr/lib/x86_64-linux-gnu"
UUID = "GPU-5a3d0c6e-0000-4000-8000-standin00000"

SMI = r"""#!/bin/sh
# STAND-IN for nvidia-smi (package nvidia-smi {deb}), built by the k3s_gpu.cluster
# driver-upgrade scenario: no NVIDIA code, one pretend GPU, driver {version}.
[ -e /dev/nvidiactl ] || mknod -m 666 /dev/nvidiactl c 195 255 2>/dev/null || : > /dev/nvidiactl
[ -e /dev/nvidia0 ] || mknod -m 666 /dev/nvidia0 c 195 0 2>/dev/null || : > /dev/nvidia0
case "$1" in
  -L)
    echo "GPU 0: NVIDIA STAND-IN GPU (UUID: {uuid})" ;;
  -q)
    cat <<'XML'
<?xml version="1.0" ?>
<nvidia_smi_log>
  <driver_version>{version}</driver_version>
  <cuda_version>12.2</cuda_version>
  <attached_gpus>1</attached_gpus>
  <gpu id="00000000:00:06.0">
    <product_name>NVIDIA STAND-IN GPU</product_name>
    <product_architecture>Hopper</product_architecture>
    <persistence_mode>Enabled</persistence_mode>
    <mig_mode><current_mig>N/A</current_mig><pending_mig>N/A</pending_mig></mig_mode>
    <uuid>{uuid}</uuid>
    <minor_number>0</minor_number>
    <pci><pci_bus_id>00000000:00:06.0</pci_bus_id></pci>
    <fb_memory_usage><total>81559 MiB</total></fb_memory_usage>
  </gpu>
</nvidia_smi_log>
XML
    ;;
  *)
    echo "| NVIDIA-SMI {version}    Driver Version: {version}    CUDA Version: 12.2 |  (STAND-IN)" ;;
esac
"""
SMI_BROKEN = r"""#!/bin/sh
# STAND-IN for nvidia-smi (package nvidia-smi {deb}), BROKEN on purpose: it behaves like a
# driver whose kernel module does not match the libraries.
echo "Failed to initialize NVML: Driver/library version mismatch"
echo "NVML library version: {version}"
exit 18
"""
PERSISTENCED_UNIT = """[Unit]
Description=STAND-IN for NVIDIA Persistence Daemon (k3s_gpu.cluster driver-upgrade scenario)

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""
PERSISTENCED_POSTINST = """#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  systemctl enable nvidia-persistenced.service || true
  systemctl restart nvidia-persistenced.service || true
fi
"""


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def package(workdir, outdir, name, version, files, depends=(), scripts=None, triggers=None):
    """Build name_version_ARCH.deb from files {path: (content, mode) or ('->', target)}."""
    root = os.path.join(workdir, "%s_%s" % (name, version))
    os.makedirs(os.path.join(root, "DEBIAN"))
    files = dict(files)
    files["usr/share/doc/%s/STAND-IN" % name] = (
        "k3s_gpu.cluster test stand-in for the Debian package %s %s; no NVIDIA code.\n" % (name, version), 0o644)
    for path, spec in sorted(files.items()):
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if spec[0] == "->":
            os.symlink(spec[1], full)
        else:
            with open(full, "w", encoding="utf-8") as handle:
                handle.write(spec[0])
            os.chmod(full, spec[1])
    control = ["Package: %s" % name, "Version: %s" % version, "Architecture: %s" % ARCH,
               "Maintainer: k3s_gpu.cluster tests <standin@k3s-gpu.invalid>", "Section: non-free/libs",
               "Priority: optional"]
    if depends:
        control.append("Depends: %s" % ", ".join(depends))
    control.append("Description: STAND-IN for %s (k3s_gpu.cluster tests, no NVIDIA code)" % name)
    with open(os.path.join(root, "DEBIAN", "control"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(control) + "\n")
    for script, text in (scripts or {}).items():
        path = os.path.join(root, "DEBIAN", script)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o755)
    if triggers:
        with open(os.path.join(root, "DEBIAN", "triggers"), "w", encoding="utf-8") as handle:
            handle.write(triggers)
    deb = os.path.join(outdir, "%s_%s_%s.deb" % (name, version, ARCH))
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, deb])
    return deb


def driver_packages(workdir, pool, version):
    deb = version + DEB_SUFFIX
    text = (SMI_BROKEN if version == BROKEN else SMI).format(version=version, deb=deb, uuid=UUID)
    ldconfig = "activate-noawait ldconfig\n"
    debs = [
        package(workdir, pool, "libnvidia-ml1", deb, {
            "%s/libnvidia-ml.so.%s" % (LIBDIR, version): ("STAND-IN libnvidia-ml %s\n" % version, 0o644),
            "%s/libnvidia-ml.so.1" % LIBDIR: ("->", "libnvidia-ml.so.%s" % version)}, triggers=ldconfig),
        package(workdir, pool, "libcuda1", deb, {
            "%s/libcuda.so.%s" % (LIBDIR, version): ("STAND-IN libcuda %s\n" % version, 0o644),
            "%s/libcuda.so.1" % LIBDIR: ("->", "libcuda.so.%s" % version)},
            depends=["libnvidia-ml1 (= %s)" % deb], triggers=ldconfig),
        package(workdir, pool, "nvidia-smi", deb, {"usr/bin/nvidia-smi": (text, 0o755)},
                depends=["libnvidia-ml1 (= %s)" % deb]),
    ]
    return debs


def packages_index(debs, repo_root):
    """Packages stanzas (Filename relative to repo_root) for ``debs``."""
    stanzas = []
    for deb in sorted(debs):
        control = run(["dpkg-deb", "--field", deb]).stdout.strip()
        with open(deb, "rb") as handle:
            data = handle.read()
        stanzas.append("%s\nFilename: %s\nSize: %d\nSHA256: %s\n" % (
            control, os.path.relpath(deb, repo_root), len(data), hashlib.sha256(data).hexdigest()))
    return "\n".join(stanzas)


def release(suite, files):
    lines = ["Origin: k3s_gpu.cluster STAND-IN", "Label: STAND-IN NVIDIA driver packages",
             "Suite: %s" % suite, "Codename: %s" % suite,
             "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime()),
             "Architectures: %s" % ARCH, "Components: %s" % " ".join(COMPONENTS), "SHA256:"]
    for rel, data in sorted(files.items()):
        lines.append(" %s %d %s" % (hashlib.sha256(data).hexdigest(), len(data), rel))
    return "\n".join(lines) + "\n"


def main(out):
    if os.path.exists(os.path.join(out, "fingerprint")):
        return
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="standin-driver.")
    gnupg = os.path.join(work, "gnupg")
    os.makedirs(gnupg, mode=0o700)
    env = dict(os.environ, GNUPGHOME=gnupg)
    try:
        repo = os.path.join(out, "repo")
        root = os.path.join(repo, "debian")
        pool = os.path.join(root, "pool", "non-free", "n", "nvidia-standin")
        os.makedirs(pool)
        debs = []
        for version in DRIVER_VERSIONS:
            debs += driver_packages(os.path.join(work, "build"), pool, version)
        debs.append(package(os.path.join(work, "build"), pool, "nvidia-persistenced", PERSISTENCED_VERSION, {
            "usr/bin/nvidia-persistenced": ("#!/bin/sh\n# STAND-IN for nvidia-persistenced: no NVIDIA code.\nexec sleep infinity\n",
                                            0o755),
            "lib/systemd/system/nvidia-persistenced.service": (PERSISTENCED_UNIT, 0o644)},
            scripts={"postinst": PERSISTENCED_POSTINST}))
        run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
             "k3s_gpu.cluster STAND-IN driver repository <standin@k3s-gpu.invalid>", "rsa2048", "sign", "1d"], env=env)
        fingerprint = run(["gpg", "--batch", "--with-colons", "--fingerprint"], env=env).stdout
        fingerprint = [l.split(":")[9] for l in fingerprint.splitlines() if l.startswith("fpr:")][0]
        with open(os.path.join(repo, "standin-driver.gpg"), "wb") as handle:
            handle.write(subprocess.run(["gpg", "--batch", "--export", fingerprint], env=env, check=True,
                                        capture_output=True).stdout)
        index = packages_index(debs, root).encode()
        for suite in SUITES:
            files = {}
            for component in COMPONENTS:
                data = index if (component == "non-free" and suite == "bookworm") else b""
                rel = "%s/binary-%s/Packages" % (component, ARCH)
                folder = os.path.join(root, "dists", suite, component, "binary-%s" % ARCH)
                os.makedirs(folder)
                with open(os.path.join(folder, "Packages"), "wb") as handle:
                    handle.write(data)
                with gzip.open(os.path.join(folder, "Packages.gz"), "wb") as handle:
                    handle.write(data)
                with open(os.path.join(folder, "Packages.gz"), "rb") as handle:
                    files[rel + ".gz"] = handle.read()
                files[rel] = data
            text = release(suite, files)
            suite_dir = os.path.join(root, "dists", suite)
            with open(os.path.join(suite_dir, "Release"), "w", encoding="utf-8") as handle:
                handle.write(text)
            run(["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", "--clearsign",
                 "--output", os.path.join(suite_dir, "InRelease"), os.path.join(suite_dir, "Release")], env=env)
        with tarfile.open(os.path.join(out, "repo.tar.gz"), "w:gz") as tar:
            tar.add(repo, arcname=".")
        with open(os.path.join(out, "fingerprint"), "w", encoding="utf-8") as handle:
            handle.write(fingerprint + "\n")
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_standin_driver_repo.py OUT")
    main(sys.argv[1])
