"""Build STAND-IN packages of NVIDIA's container toolkit and a signed apt repository of them.

NVIDIA's repository cannot be reached from the test machine, so the host-role scenarios
(molecule/debian12, molecule/debian13, and k3s-lab's late-toolkit replay) install these
instead. The packages are stand-ins: each carries the real package's name, versions and
dependency shape, built here with dpkg-deb. The Go programs in them are NVIDIA's real ones:
nvidia-ctk, nvidia-container-runtime, nvidia-container-runtime.cdi, nvidia-cdi-hook and
nvidia-container-runtime-hook, built from the Go module github.com/NVIDIA/nvidia-container-toolkit
at the version pinned in tests/upstream/peers-toolkit/go.mod (scripts/upstream.sh peers-toolkit;
UPSTREAM_BIN overrides where they are taken from). nvidia-container-cli belongs to
libnvidia-container, which is C and not a Go module: it stays a shell script that says it is a
stand-in and exits 1. The package versions (below) are the scenarios' own and do not follow
the programs' version. They prove the role's repository, keyring, pinning, airgap and ordering
logic, and put the real runtimes where K3s looks for them; not that NVIDIA's packages install
cleanly, nor libnvidia-container.

Writes, under OUT:
  repo/stable/deb/<arch>/   flat apt repository (Packages, Packages.gz, Release, InRelease)
                            with versions 1.20.0-1 (pinned by the role) and 1.20.1-1 (newer,
                            made up here, must NOT be installed), served as NVIDIA's URL layout
  repo/gpgkey               throwaway public key that signs the repository (armored)
  repo/wrong-gpgkey         another throwaway key (for the fingerprint-mismatch test)
  repo.tar.gz               repo/ in one archive, for the copy into the instance
  airgap/                   the 1.20.0-1 packages only (airgap folder), with their SHA256SUMS
  fingerprint               fingerprint of repo/gpgkey

  programs                  the NVIDIA programs packed (name, version, sha256) and LAYOUT

Usage: build_standin_repo.py OUT [ARCH]   (ARCH default: dpkg --print-architecture)
Needs dpkg-deb and gpg on the controller (Debian), and Go or the built programs (UPSTREAM_BIN).
Rebuilds only when OUT/fingerprint is missing or the programs or LAYOUT changed (OUT/programs).
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

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# PINNED is the role's default (roles/nvidia_container_toolkit/defaults/main.yml); the other
# version is newer than the pin, so that the apt pin has something to hold back.
VERSIONS = ["1.20.0-1", "1.20.1-1"]
PINNED = "1.20.0-1"
# name -> (dependencies on the same version, stand-in executables)
PACKAGES = {
    "libnvidia-container1": ([], []),
    "libnvidia-container-tools": (["libnvidia-container1"], ["nvidia-container-cli"]),
    "nvidia-container-toolkit-base": (
        [], ["nvidia-ctk", "nvidia-cdi-hook", "nvidia-container-runtime", "nvidia-container-runtime.cdi"]),
    "nvidia-container-toolkit": (["nvidia-container-toolkit-base", "libnvidia-container-tools"],
                                 ["nvidia-container-runtime-hook"]),
}
# Executables that are NVIDIA's real programs, built from the toolkit's Go module.
REAL = ["nvidia-ctk", "nvidia-cdi-hook", "nvidia-container-runtime", "nvidia-container-runtime.cdi",
        "nvidia-container-runtime-hook"]
# Toolkit 1.18+ ships its CDI refresh units in nvidia-container-toolkit-base (under
# /lib/systemd/system; its postinst enables them). The stand-in ships units of the same names
# that do nothing, installed but not enabled: the role must find them after installing the
# packages and keep them off (roles/nvidia_container_toolkit/tasks/cdi_owner.yml).
UNITS = {
    "nvidia-container-toolkit-base": {
        "nvidia-cdi-refresh.service": (
            "[Unit]\n"
            "Description=STAND-IN for the toolkit's nvidia-cdi-refresh.service (k3s_gpu.cluster tests): does nothing\n"
            "[Service]\nType=oneshot\nExecStart=/bin/true\n"),
        "nvidia-cdi-refresh.path": (
            "[Unit]\n"
            "Description=STAND-IN for the toolkit's nvidia-cdi-refresh.path (k3s_gpu.cluster tests): watches nothing real\n"
            "[Path]\nPathChanged=/run/k3s-gpu-standin-nvidia-cdi-refresh\nUnit=nvidia-cdi-refresh.service\n"),
    },
}
# Part of the OUT/programs stamp: a change of what the packages hold rebuilds the repository.
LAYOUT = "2 (nvidia-cdi-refresh units in nvidia-container-toolkit-base)"
STANDIN_SCRIPT = """#!/bin/sh
# STAND-IN for NVIDIA's {name} (package {pkg} {version}), built by the k3s_gpu.cluster tests.
# It contains no NVIDIA code and cannot configure or run GPU containers.
if [ "$1" = "--version" ] || [ "$1" = "-v" ]; then
  echo "{name} version {upstream} (k3s_gpu.cluster STAND-IN, not NVIDIA's binary)"
  exit 0
fi
echo "{name}: k3s_gpu.cluster STAND-IN package, not NVIDIA's binary; install the real {pkg}" >&2
exit 1
"""


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def real_programs(arch):
    """{name: path} of NVIDIA's programs, built (or found up to date) by scripts/upstream.sh."""
    host_arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    if arch != host_arch:
        sys.exit("the NVIDIA programs are built for %s, the repository is for %s: build it on a %s machine"
                 % (host_arch, arch, arch))
    folder = os.environ.get("UPSTREAM_BIN") or os.path.join(REPO_ROOT, ".cache", "upstream", "bin")
    if not os.environ.get("UPSTREAM_BIN"):
        proc = subprocess.run([os.path.join(REPO_ROOT, "scripts", "upstream.sh"), "peers-toolkit"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit("scripts/upstream.sh peers-toolkit failed (it builds nvidia-ctk and the runtimes from the toolkit's "
                     "Go module):\n%s" % (proc.stdout + proc.stderr)[-3000:])
    found = {}
    for name in REAL:
        path = os.path.join(folder, name)
        if not os.access(path, os.X_OK):
            sys.exit("%s is missing: run scripts/upstream.sh peers-toolkit (or unset UPSTREAM_BIN)" % path)
        found[name] = path
    return found


def describe_programs(programs):
    """One line per program: name, the version it prints, sha256 (the OUT/programs stamp)."""
    lines = []
    for name in REAL:
        out = subprocess.run([programs[name], "--version"], capture_output=True, text=True, check=False).stdout
        if name == "nvidia-container-runtime-hook":
            out = subprocess.run([programs[name], "-version"], capture_output=True, text=True, check=False).stdout
        version = (out.strip().splitlines() or ["?"])[0]
        with open(programs[name], "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        lines.append("%s\t%s\t%s" % (name, version, digest))
    lines.append("layout\t%s" % LAYOUT)
    return "\n".join(lines) + "\n"


def build_deb(workdir, outdir, pkg, version, arch, programs):
    deps, bins = PACKAGES[pkg]
    root = os.path.join(workdir, "%s_%s" % (pkg, version))
    os.makedirs(os.path.join(root, "DEBIAN"))
    docdir = os.path.join(root, "usr", "share", "doc", pkg)
    os.makedirs(docdir)
    real = [name for name in bins if name in REAL]
    with open(os.path.join(docdir, "STAND-IN"), "w", encoding="utf-8") as fh:
        fh.write("k3s_gpu.cluster test stand-in package for NVIDIA's %s %s. %s\n" % (
            pkg, version, ("Its programs %s are NVIDIA's, built from the Go module "
                           "github.com/NVIDIA/nvidia-container-toolkit." % ", ".join(real)) if real
            else "It contains no NVIDIA code."))
    if bins:
        bindir = os.path.join(root, "usr", "bin")
        os.makedirs(bindir)
        for name in bins:
            path = os.path.join(bindir, name)
            if name in REAL:
                shutil.copyfile(programs[name], path)
            else:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(STANDIN_SCRIPT.format(name=name, pkg=pkg, version=version,
                                                   upstream=version.split("-")[0]))
            os.chmod(path, 0o755)
    if pkg in UNITS:
        unitdir = os.path.join(root, "lib", "systemd", "system")
        os.makedirs(unitdir)
        for name, text in UNITS[pkg].items():
            with open(os.path.join(unitdir, name), "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(os.path.join(unitdir, name), 0o644)
    control = {
        "Package": pkg,
        "Version": version,
        "Architecture": arch,
        "Maintainer": "k3s_gpu.cluster tests <standin@k3s-gpu.invalid>",
        "Section": "utils",
        "Priority": "optional",
    }
    if deps:
        control["Depends"] = ", ".join("%s (= %s)" % (d, version) for d in deps)
    if real:
        contents = (" Its programs are NVIDIA's, built from the Go module\n"
                    " github.com/NVIDIA/nvidia-container-toolkit: %s." % ", ".join(real))
    else:
        contents = " It contains no NVIDIA code."
    description = ("STAND-IN for NVIDIA's %s (k3s_gpu.cluster tests)\n"
                   " Test double built by molecule prepare with dpkg-deb. It has the real package's\n"
                   " name, version and dependencies; it proves repository, pinning and ordering logic.\n"
                   "%s" % (pkg, contents))
    with open(os.path.join(root, "DEBIAN", "control"), "w", encoding="utf-8") as fh:
        for key, value in control.items():
            fh.write("%s: %s\n" % (key, value))
        fh.write("Description: %s\n" % description)
    filename = "%s_%s_%s.deb" % (pkg, version, arch)
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, os.path.join(outdir, filename)])
    return control, description, filename


def packages_entry(control, description, filename, outdir):
    data = open(os.path.join(outdir, filename), "rb").read()
    lines = ["%s: %s" % kv for kv in control.items()]
    lines += [
        "Filename: ./%s" % filename,
        "Size: %d" % len(data),
        "MD5sum: %s" % hashlib.md5(data).hexdigest(),
        "SHA256: %s" % hashlib.sha256(data).hexdigest(),
        "Description: %s" % description,
    ]
    return "\n".join(lines) + "\n"


def gen_key(gnupghome, uid):
    env = dict(os.environ, GNUPGHOME=gnupghome)
    run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "rsa3072", "sign", "2d"], env=env)
    out = run(["gpg", "--batch", "--with-colons", "--fingerprint", uid], env=env).stdout
    fpr = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")][0]
    return env, fpr


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: build_standin_repo.py OUT [ARCH]")
    out = os.path.abspath(sys.argv[1])
    arch = sys.argv[2] if len(sys.argv) > 2 else run(["dpkg", "--print-architecture"]).stdout.strip()
    for tool in ("dpkg-deb", "gpg"):
        if shutil.which(tool) is None:
            sys.exit("%s not found on the controller: install dpkg and gnupg (apt-get install dpkg gnupg)" % tool)
    programs = real_programs(arch)
    stamp = describe_programs(programs)
    stamp_path = os.path.join(out, "programs")
    if os.path.exists(os.path.join(out, "fingerprint")):
        with open(stamp_path, encoding="utf-8") if os.path.exists(stamp_path) else open(os.devnull) as fh:
            if fh.read() == stamp:
                print("stand-in repository exists in %s" % out)
                return
        print("the NVIDIA programs or the package layout changed: rebuilding the stand-in repository in %s" % out)
        for name in ("repo", "airgap", "repo.tar.gz", "fingerprint", "programs"):
            target = os.path.join(out, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
    repo = os.path.join(out, "repo")
    pool = os.path.join(repo, "stable", "deb", arch)
    airgap = os.path.join(out, "airgap")
    for d in (pool, airgap):
        os.makedirs(d, exist_ok=True)
    work = tempfile.mkdtemp(prefix="standin-")
    try:
        entries = []
        for version in VERSIONS:
            for pkg in PACKAGES:
                control, description, filename = build_deb(work, pool, pkg, version, arch, programs)
                entries.append(packages_entry(control, description, filename, pool))
                if version == PINNED:
                    shutil.copy(os.path.join(pool, filename), os.path.join(airgap, filename))
        # The checksums the role checks the airgap packages against (as a user records them).
        with open(os.path.join(airgap, "SHA256SUMS"), "w", encoding="utf-8") as fh:
            for filename in sorted(os.listdir(airgap)):
                if filename.endswith(".deb"):
                    with open(os.path.join(airgap, filename), "rb") as deb:
                        fh.write("%s  %s\n" % (hashlib.sha256(deb.read()).hexdigest(), filename))
        packages = "\n".join(entries).encode()
        with open(os.path.join(pool, "Packages"), "wb") as fh:
            fh.write(packages)
        with gzip.open(os.path.join(pool, "Packages.gz"), "wb") as fh:
            fh.write(packages)
        release = [
            "Origin: k3s_gpu.cluster stand-in",
            "Label: STAND-IN nvidia-container-toolkit (k3s_gpu.cluster tests)",
            "Architectures: %s" % arch,
            "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime()),
            "SHA256:",
        ]
        for name in ("Packages", "Packages.gz"):
            data = open(os.path.join(pool, name), "rb").read()
            release.append(" %s %d %s" % (hashlib.sha256(data).hexdigest(), len(data), name))
        with open(os.path.join(pool, "Release"), "w", encoding="utf-8") as fh:
            fh.write("\n".join(release) + "\n")
        home = os.path.join(work, "gnupg")
        os.makedirs(home, mode=0o700)
        env, fpr = gen_key(home, "k3s_gpu.cluster STAND-IN repository key (throwaway) <standin@k3s-gpu.invalid>")
        run(["gpg", "--batch", "--yes", "--local-user", fpr, "--clearsign", "--digest-algo", "SHA512",
             "-o", os.path.join(pool, "InRelease"), os.path.join(pool, "Release")], env=env)
        with open(os.path.join(repo, "gpgkey"), "w", encoding="utf-8") as fh:
            fh.write(run(["gpg", "--batch", "--armor", "--export", fpr], env=env).stdout)
        home2 = os.path.join(work, "gnupg2")
        os.makedirs(home2, mode=0o700)
        env2, _wrong_fingerprint = gen_key(home2, "k3s_gpu.cluster WRONG key (throwaway) <wrong@k3s-gpu.invalid>")
        with open(os.path.join(repo, "wrong-gpgkey"), "w", encoding="utf-8") as fh:
            fh.write(run(["gpg", "--batch", "--armor", "--export"], env=env2).stdout)
        # One archive to copy into the instance (one transfer instead of one per file).
        with tarfile.open(os.path.join(out, "repo.tar.gz"), "w:gz") as tar:
            tar.add(repo, arcname=".")
        with open(stamp_path, "w", encoding="utf-8") as fh:
            fh.write(stamp)
        with open(os.path.join(out, "fingerprint"), "w", encoding="utf-8") as fh:
            fh.write(fpr + "\n")
        print("stand-in repository in %s, signed by %s" % (out, fpr))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
