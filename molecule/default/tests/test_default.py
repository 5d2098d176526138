"""Verify the lab smoke test: systemd is PID 1 and running, Ansible's needs are there."""

import pytest

# Targets: every instance of the scenario, through molecule's inventory.
testinfra_hosts = ["all"]


def test_systemd_is_pid_1(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_system_is_running(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    failed = host.run("systemctl --failed --no-legend --plain").stdout
    assert state in ("running", "degraded"), failed
    # The images mask what cannot work in a container: nothing may be failed.
    assert state == "running", f"failed units: {failed}"


@pytest.mark.parametrize("command", ["python3 -c 'import apt, json'", "sudo -n true", "ip -brief address", "curl --version", "gpg --version"])
def test_tools_present(host, command):
    result = host.run(command)
    assert result.rc == 0, result.stderr


def test_apt_sources_main_only(host):
    sources = host.file("/etc/apt/sources.list.d/debian.sources")
    assert sources.exists
    components = {line.split(":", 1)[1].strip() for line in sources.content_string.splitlines() if line.startswith("Components:")}
    assert components == {"main"}


def test_smoke_unit_enabled_and_running(host):
    unit = host.service("k3s-gpu-lab-smoke.service")
    assert unit.is_enabled
    assert unit.is_running


def test_container_marker(host):
    # systemd reads `container=docker` from PID 1's environment (set by the image).
    assert host.run("systemd-detect-virt --container").stdout.strip() == "docker"
