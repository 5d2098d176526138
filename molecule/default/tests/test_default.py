"""Lab smoke test: systemd is PID 1 and running, Ansible's needs are there, the converged
unit runs. Shared by molecule/default and molecule/platforms-ubuntu-rocky."""

import pytest

# Targets: every instance of the scenario, through molecule's inventory.
testinfra_hosts = ["all"]

# The Python binding Ansible's package module needs, per distribution family.
PKG_BINDING = {"debian": "apt", "ubuntu": "apt", "rocky": "dnf"}


def test_systemd_is_pid_1(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_system_is_running(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    failed = host.run("systemctl --failed --no-legend --plain").stdout
    # The images mask what cannot work in a container: no unit may have failed.
    assert state == "running", f"systemd is {state!r}; failed units: {failed}"


def test_container_marker(host):
    # systemd reads `container=docker` from PID 1's environment (set by the image).
    assert host.run("systemd-detect-virt --container").stdout.strip() == "docker"


@pytest.mark.parametrize(
    "command",
    ["python3 --version", "sudo -n true", "ip -brief address", "curl --version", "gpg --version"],
)
def test_tools_present(host, command):
    result = host.run(command)
    assert result.rc == 0, f"{command}: rc={result.rc} {result.stderr}"


def test_package_manager_binding(host):
    distro = host.system_info.distribution
    assert distro in PKG_BINDING, f"unexpected distribution {distro!r}"
    result = host.run(f"python3 -c 'import {PKG_BINDING[distro]}'")
    assert result.rc == 0, result.stderr


def test_debian_apt_sources_main_only(host):
    if host.system_info.distribution != "debian":
        pytest.skip("the deb822 sources check applies to the k3s-gpu-lab Debian images only")
    sources = host.file("/etc/apt/sources.list.d/debian.sources")
    assert sources.exists
    components = {
        line.split(":", 1)[1].strip()
        for line in sources.content_string.splitlines()
        if line.startswith("Components:")
    }
    assert components == {"main"}


def test_smoke_unit_enabled_and_running(host):
    unit = host.service("k3s-gpu-lab-smoke.service")
    assert unit.is_enabled
    assert unit.is_running
