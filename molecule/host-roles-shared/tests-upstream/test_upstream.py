"""Verify the host roles against the real upstream repositories (ubuntu2204, ubuntu2404,
rocky9): NVIDIA's container toolkit at the pinned version, from a repository signed by the
pinned key; on Ubuntu, Ubuntu's driver user-space of the default branch without DKMS."""

testinfra_hosts = ["all"]

TOOLKIT = ["libnvidia-container1", "libnvidia-container-tools", "nvidia-container-toolkit-base", "nvidia-container-toolkit"]
PINNED = "1.20.0-1"
BRANCH = "580"


def installed_version(host, name):
    pkg = host.package(name)
    assert pkg.is_installed, name
    if host.system_info.distribution in ("rocky", "redhat", "almalinux", "centos"):
        return f"{pkg.version}-{pkg.release}"
    return pkg.version


def test_toolkit_pinned(host):
    for name in TOOLKIT:
        assert installed_version(host, name) == PINNED, name


def test_toolkit_binaries(host):
    assert host.run("nvidia-ctk --version").rc == 0


def test_ubuntu_driver_userspace_without_dkms(host):
    if host.system_info.distribution != "ubuntu":
        return
    assert host.package(f"nvidia-utils-{BRANCH}-server").is_installed
    assert host.package(f"nvidia-headless-no-dkms-{BRANCH}-server").is_installed
    assert not host.package("dkms").is_installed
    src = host.file("/etc/apt/sources.list.d/k3s-gpu-nvidia-container-toolkit.sources").content_string
    assert "Signed-By: /etc/apt/keyrings/nvidia-container-toolkit.asc" in src
