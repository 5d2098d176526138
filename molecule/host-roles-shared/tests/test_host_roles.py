"""Verify the host roles on the lab instance marked as a GPU node without a GPU.

Shared by molecule/debian12 (toolkit from the signed stand-in repository, containerd) and
molecule/debian13 (toolkit from an airgap folder, Docker daemon.json merge, NixOS render).
The toolkit packages are stand-ins (build_standin_repo.py) that carry NVIDIA's real Go programs
(nvidia-ctk, the runtimes and hooks, built from the toolkit's Go module); nvidia-container-cli
is a stand-in script. The Debian driver packages are Debian's own.
"""

import json
import os
import re
import subprocess

import pytest

testinfra_hosts = ["all"]

TOOLKIT = ["libnvidia-container1", "libnvidia-container-tools", "nvidia-container-toolkit-base", "nvidia-container-toolkit"]
PINNED = "1.20.0-1"
DEBIAN_BRANCH = {"12": "535", "13": "550"}
NIXOS_DIR = "/srv/k3s-gpu-standin-nixos"
NIXOS_TOKEN = "k3s-gpu-lab-FAKE-token-not-a-secret"  # converge-nixos.yml
# The K3s module evaluated with a stand-in pkgs that has the package of k3s_version's minor.
NIXOS_K3S = ("(import /srv/k3s-gpu-standin-nixos/k3s-gpu-k3s.nix"
             " { config = {}; lib = {}; pkgs = { k3s_1_36 = \"k3s_1_36-standin\"; }; })")
NIXOS_TOKEN_FILE = "/etc/rancher/k3s/cluster-token"  # the K3s roles' token file, on every OS


@pytest.fixture(scope="module")
def hostvars(host):
    return host.ansible.get_variables()


def debian_major(host):
    return host.system_info.release.split(".")[0]


# --- nvidia_driver -------------------------------------------------------------------------

def test_debian_nonfree_components_enabled(host):
    f = host.file("/etc/apt/sources.list.d/k3s-gpu-debian-nonfree.sources")
    assert f.exists and f.mode == 0o644
    text = f.content_string
    assert "Components: contrib non-free non-free-firmware" in text
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in text
    assert f"Suites: {host.system_info.codename} {host.system_info.codename}-updates" in text


def test_driver_userspace_of_debian_branch_installed(host):
    branch = DEBIAN_BRANCH[debian_major(host)]
    for name in ("nvidia-smi", "libcuda1"):
        pkg = host.package(name)
        assert pkg.is_installed, name
        assert pkg.version.startswith(branch + "."), f"{name} {pkg.version} is not of branch {branch}"


def test_no_kernel_module_with_build_modules_false(host):
    # nvidia_driver_build_modules: false must not pull DKMS or headers in.
    for name in ("nvidia-kernel-dkms", "nvidia-open-kernel-dkms", "dkms"):
        assert not host.package(name).is_installed, name


def test_nvidia_smi_cannot_reach_a_driver(host):
    # Honest lab: the user-space is there, no kernel module is loaded.
    result = host.run("nvidia-smi")
    assert result.rc != 0


def test_nouveau_blacklisted(host):
    f = host.file("/etc/modprobe.d/k3s-gpu-blacklist-nouveau.conf")
    assert f.exists
    assert "blacklist nouveau" in f.content_string
    assert "options nouveau modeset=0" in f.content_string


# --- nvidia_container_toolkit --------------------------------------------------------------

def test_toolkit_packages_pinned(host):
    for name in TOOLKIT:
        pkg = host.package(name)
        assert pkg.is_installed, name
        assert pkg.version == PINNED, f"{name} is {pkg.version}, pinned {PINNED}"
        desc = host.check_output(f"dpkg-query -W -f='${{Description}}' {name}")
        assert desc.startswith("STAND-IN"), f"{name} is not the stand-in: {desc}"


def test_toolkit_programs_are_nvidias(host):
    # The Go programs in the stand-in packages are NVIDIA's, built from the toolkit module
    # (tests/upstream/peers-toolkit); libnvidia-container's CLI (C) stays a stand-in script.
    stamp = open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "standin", "programs")).read()
    built = dict((line.split("\t")[0], line.split("\t")[1]) for line in stamp.splitlines())
    for name, flag in (("nvidia-ctk", "--version"), ("nvidia-container-runtime", "--version"),
                       ("nvidia-container-runtime.cdi", "--version"), ("nvidia-cdi-hook", "--version"),
                       ("nvidia-container-runtime-hook", "-version")):
        # The runtimes print their version, then look for runc (not installed here) and exit 1.
        result = host.run(f"/usr/bin/{name} {flag}")
        out = result.stdout
        assert out.splitlines()[:1] == [built[name]], f"{name}: {out} {result.stderr}"
        assert "STAND-IN" not in out
    # The real nvidia-ctk works on the instance: it writes a containerd drop-in to stdout.
    dry = host.run("nvidia-ctk runtime configure --runtime=containerd --config=/nonexistent.toml --dry-run")
    assert dry.rc == 0 and 'BinaryName = "/usr/bin/nvidia-container-runtime"' in dry.stdout, dry.stdout + dry.stderr
    cli = host.run("nvidia-container-cli --version")
    assert "STAND-IN" in cli.stdout


def test_toolkit_apt_preferences_pin(host):
    f = host.file("/etc/apt/preferences.d/k3s-gpu-nvidia-container-toolkit.pref")
    assert f.exists
    assert f"Pin: version {PINNED}" in f.content_string
    assert "Pin-Priority: 1001" in f.content_string
    for name in TOOLKIT:
        assert name in f.content_string


def test_toolkit_repository_signed_by_pinned_key(host, hostvars):
    if hostvars.get("nvidia_container_toolkit_local_package_dir"):
        pytest.skip("airgap scenario: no repository")
    src = host.file("/etc/apt/sources.list.d/k3s-gpu-nvidia-container-toolkit.sources")
    assert src.exists
    assert "URIs: http://127.0.0.1:8765/stable/deb/$(ARCH)" in src.content_string
    assert "Suites: /" in src.content_string
    assert "Signed-By: /etc/apt/keyrings/nvidia-container-toolkit.asc" in src.content_string
    key = host.file("/etc/apt/keyrings/nvidia-container-toolkit.asc")
    assert key.exists and key.mode == 0o644
    listing = host.check_output("gpg --batch --show-keys --with-colons /etc/apt/keyrings/nvidia-container-toolkit.asc")
    fprs = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
    expected = open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "standin", "fingerprint")).read().strip()
    assert fprs[0] == expected


def test_toolkit_newer_version_offered_but_not_installed(host, hostvars):
    if hostvars.get("nvidia_container_toolkit_local_package_dir"):
        pytest.skip("airgap scenario: no repository")
    policy = host.check_output("apt-cache policy nvidia-container-toolkit")
    # The stand-in repository offers 1.20.1-1; the pin keeps 1.20.0-1 as the candidate.
    assert "1.20.1-1" in policy
    assert f"Candidate: {PINNED}" in policy
    assert f"Installed: {PINNED}" in policy


def test_toolkit_airgap_packages_copied(host, hostvars):
    if not hostvars.get("nvidia_container_toolkit_local_package_dir"):
        pytest.skip("repository scenario: no airgap folder")
    assert not host.file("/etc/apt/sources.list.d/k3s-gpu-nvidia-container-toolkit.sources").exists
    cache = "/var/cache/k3s_gpu/nvidia-container-toolkit"
    for name in TOOLKIT:
        assert host.file(f"{cache}/{name}_{PINNED}_amd64.deb").exists or host.file(f"{cache}/{name}_{PINNED}_arm64.deb").exists


def test_toolkit_cdi_refresh_units_kept_off(host):
    # The stand-in nvidia-container-toolkit-base ships nvidia-cdi-refresh.{service,path} where
    # toolkit 1.18+ does. The role must find them right after installing the packages: a role that
    # only finds them in its second run fails the idempotence step before this test.
    for unit in ("nvidia-cdi-refresh.service", "nvidia-cdi-refresh.path"):
        assert host.file(f"/lib/systemd/system/{unit}").exists, unit
        dropin = host.file(f"/etc/systemd/system/{unit}.d/50-k3s-gpu-cdi-owner.conf")
        assert dropin.exists, dropin.path
        assert "ConditionPathExists=!/etc/cdi/nvidia.yaml" in dropin.content_string
        assert not host.service(unit).is_running, unit


def test_no_cdi_spec_without_a_driver(host):
    # cdi_spec runs only when nvidia_smi_facts reports ok; here the driver cannot load.
    assert not host.file("/etc/cdi/nvidia.yaml").exists


# --- Docker daemon.json merge (debian13) ---------------------------------------------------

def test_daemon_json_merged_not_overwritten(host, hostvars):
    if hostvars.get("k3s_gpu_container_runtime") != "docker":
        pytest.skip("containerd scenario")
    data = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert data["log-driver"] == "journald"
    assert data["features"] == {"buildkit": True}
    assert data["runtimes"]["crun"] == {"path": "/usr/bin/crun"}
    assert data["runtimes"]["nvidia"] == {"path": "/usr/bin/nvidia-container-runtime", "args": []}
    assert data["default-runtime"] == "nvidia"
    backups = host.check_output("ls /etc/docker/").split()
    assert any(name.startswith("daemon.json.") for name in backups), backups


def test_docker_restarted_exactly_once(host, hostvars):
    if hostvars.get("k3s_gpu_container_runtime") != "docker":
        pytest.skip("containerd scenario")
    starts = host.file("/var/log/k3s-gpu-standin-docker-starts").content_string.split()
    # One start in prepare, one restart for the merge; check mode and idempotence add none.
    assert len(starts) == 2, starts


# --- NixOS render (debian13) ---------------------------------------------------------------

def test_nixos_configuration_imports_both_modules_once(host, hostvars):
    if not hostvars.get("lab_host_roles_nixos"):
        pytest.skip("no NixOS render in this scenario")
    text = host.file(f"{NIXOS_DIR}/configuration.nix").content_string
    assert text.count("./k3s-gpu-driver.nix") == 1
    assert text.count("./k3s-gpu.nix") == 1
    assert text.count("./k3s-gpu-k3s.nix") == 1
    assert "./hardware-configuration.nix" in text


@pytest.mark.parametrize("name", ["k3s-gpu.nix", "k3s-gpu-driver.nix", "k3s-gpu-k3s.nix", "configuration.nix"])
def test_nixos_files_parse(host, hostvars, name):
    if not hostvars.get("lab_host_roles_nixos"):
        pytest.skip("no NixOS render in this scenario")
    result = host.run(f"nix-instantiate --parse {NIXOS_DIR}/{name}")
    assert result.rc == 0, result.stderr


def test_nixos_flags_are_literal_strings(host, hostvars):
    if not hostvars.get("lab_host_roles_nixos"):
        pytest.skip("no NixOS render in this scenario")
    out = host.check_output(f"nix-instantiate --eval --strict --json -E '{NIXOS_K3S}.services.k3s'")
    k3s = json.loads(out)
    assert k3s["role"] == "agent"
    assert k3s["serverAddr"] == "https://10.0.0.1:6443"
    # k3s_version v1.36.x: nixpkgs' k3s_1_36 (the stand-in pkgs has it).
    assert k3s["package"] == "k3s_1_36-standin"
    # The same computed configuration as config.yaml elsewhere (keys sorted), then the extra flags.
    assert k3s["extraFlags"] == [
        "--data-dir=/var/lib/rancher/k3s",
        "--docker",
        "--node-label=lab.k3s-gpu/pool=nixos",
        "--node-label=nvidia.com/gpu.present=true",
        "--node-taint=nvidia.com/gpu=true:NoSchedule",
        '--node-label=lab.k3s-gpu/quoted="yes"',
        "--kubelet-arg=eviction-hard=memory.available<5%",
        "--node-label=lab.k3s-gpu/literal=${not_interpolated}\\n",
    ]


def test_nixos_token_file_written_root_only(host, hostvars):
    if not hostvars.get("lab_host_roles_nixos"):
        pytest.skip("no NixOS render in this scenario")
    f = host.file(NIXOS_TOKEN_FILE)
    assert f.is_file
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
    assert f.content_string == NIXOS_TOKEN + "\n"
    folder = host.file(os.path.dirname(NIXOS_TOKEN_FILE))
    assert (folder.user, folder.mode & 0o022) == ("root", 0)


def test_nixos_token_not_in_the_nix_files(host, hostvars):
    if not hostvars.get("lab_host_roles_nixos"):
        pytest.skip("no NixOS render in this scenario")
    expr = f"{NIXOS_K3S}.services.k3s.tokenFile"
    assert json.loads(host.check_output(f"nix-instantiate --eval --strict --json -E '{expr}'")) == NIXOS_TOKEN_FILE
    # Neither the rendered modules nor their backups hold the token.
    found = host.run(f"grep -rlF {NIXOS_TOKEN} {NIXOS_DIR}")
    assert found.rc == 1, found.stdout


def test_nixos_driver_module(host, hostvars):
    if not hostvars.get("lab_host_roles_nixos"):
        pytest.skip("no NixOS render in this scenario")
    text = host.file(f"{NIXOS_DIR}/k3s-gpu-driver.nix").content_string
    assert "nvidiaPackages.production;" in text
    assert "open = true;" in text
    toolkit = host.file(f"{NIXOS_DIR}/k3s-gpu.nix").content_string
    assert "hardware.nvidia-container-toolkit.enable = true;" in toolkit
    # K3s moved to the K3s roles' module.
    assert "services.k3s" not in toolkit


def test_nixos_rebuild_only_on_change(host, hostvars):
    if not hostvars.get("lab_host_roles_nixos"):
        pytest.skip("no NixOS render in this scenario")
    calls = host.file("/var/log/k3s-gpu-standin-nixos-rebuild.log").content_string.splitlines()
    # converge: one rebuild per role (each rendered its module); idempotence: none.
    assert [c.split(" ", 1)[1] for c in calls] == ["switch driver", "switch toolkit", "switch k3s"], calls


def test_nixos_k3s_version_without_nixpkgs_package_fails_clearly(host, hostvars):
    if not hostvars.get("lab_host_roles_nixos"):
        pytest.skip("no NixOS render in this scenario")
    expr = (f"(import {NIXOS_DIR}/k3s-gpu-k3s.nix {{ config = {{}}; lib = {{}}; pkgs = {{ k3s = 1; }}; }})"
            ".assertions")
    found = json.loads(host.check_output(f"nix-instantiate --eval --strict --json -E '{expr}'"))
    assert found[0]["assertion"] is False
    assert "k3s_version v1.36.3+k3s1 needs nixpkgs attribute k3s_1_36" in found[0]["message"]


# --- negative tests: the roles' own messages, before any change ----------------------------

def test_negative_cases(host, hostvars):
    if not hostvars.get("lab_host_roles_negative"):
        pytest.skip("negative tests run in molecule/debian12")
    here = os.path.dirname(os.path.abspath(__file__))
    playbook = os.path.join(here, "..", "negative.yml")
    result = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook],
        capture_output=True, text=True, env=os.environ.copy(), timeout=900, check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "negative cases passed:" in result.stdout


# --- drift: a change behind the roles' back is repaired, then nothing changes --------------

def _ansible_playbook(name):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(here, "..", name)],
        capture_output=True, text=True, env=env, timeout=1800, check=False,
    )


def test_drift_repaired_then_nothing_changes(host, hostvars):
    if not hostvars.get("lab_host_roles_drift"):
        pytest.skip("the drift check runs in molecule/debian12")
    # drift.yml changes files, a package and a unit behind the roles' back, runs converge.yml
    # and fails unless every change was put back (a skip that hid a difference fails it).
    result = _ansible_playbook("drift.yml")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    assert "drift repaired:" in result.stdout
    # A third run of the roles changes nothing.
    again = _ansible_playbook("converge.yml")
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-3000:]
    recap = re.findall(r"(?m)^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0\b", again.stdout)
    changed_tasks = [block.split("]", 1)[0] for block in again.stdout.split("TASK [")[1:] if "\nchanged: " in block]
    assert recap and all(changed == "0" for _name, changed in recap), (recap, changed_tasks)
