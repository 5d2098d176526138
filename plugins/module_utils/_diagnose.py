# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Detectors for the known ways a GPU K3s node fails.

Each ``detect_*`` function takes plain data that ``playbooks/diagnose.yml`` collected
read-only from a host or the cluster (command output, file text, file times, node JSON)
and returns a list of findings. A finding is a dict: ``id``, ``title``, ``cause``, ``fix``
and ``evidence`` (the lines that matched). No detector touches a host. ``run_all`` feeds
one host's collected data to every detector. Python 3.9+ standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi_owner
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _yaml
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._nvidia_smi import parse_table

GPU_TAINT_KEY = "nvidia.com/gpu"

# Kernel options K3s networking (flannel VXLAN, kube-proxy iptables, network policy) needs;
# NVIDIA's L4T kernels have shipped without several of them.
K3S_KERNEL_OPTIONS = (
    "CONFIG_VXLAN",
    "CONFIG_BRIDGE_NETFILTER",
    "CONFIG_NETFILTER_XT_MATCH_COMMENT",
    "CONFIG_NETFILTER_XT_MATCH_MULTIPORT",
    "CONFIG_NETFILTER_XT_MATCH_CONNTRACK",
    "CONFIG_NETFILTER_XT_MATCH_STATISTIC",
    "CONFIG_NETFILTER_XT_MARK",
    "CONFIG_IP_NF_NAT",
    "CONFIG_IP_SET",
    "CONFIG_IP_SET_HASH_IP",
    "CONFIG_NF_CONNTRACK",
    "CONFIG_OVERLAY_FS",
)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def finding(fid, title, cause, fix, evidence=None):
    return {
        "id": fid,
        "title": title,
        "cause": cause,
        "fix": fix,
        "evidence": [line for line in (evidence or []) if line][:8],
    }


def _lines_matching(text, pattern):
    regex = re.compile(pattern, re.IGNORECASE)
    return [line.strip() for line in (text or "").splitlines() if regex.search(line)]


def _join_texts(texts):
    if isinstance(texts, dict):
        return "\n".join(str(v) for v in texts.values() if v)
    if isinstance(texts, (list, tuple)):
        return "\n".join(str(v) for v in texts if v)
    return str(texts or "")


# ------------------------------------------------------------------------------ driver

_MODULE_VERSION = re.compile(r"Kernel Module\s+(?:for\s+\S+\s+)?([0-9]+\.[0-9]+(?:\.[0-9]+)?)")


def kernel_module_version(proc_version_text):
    """Version of the loaded nvidia kernel module from /proc/driver/nvidia/version."""
    match = _MODULE_VERSION.search(proc_version_text or "")
    return match.group(1) if match else None


def detect_driver(nvidia_smi_rc, nvidia_smi_output, proc_version_text="", gpu_node=True,
                  facts_status=None):
    """Driver not installed, not loaded, or user space and kernel module out of step.

    ``facts_status`` is ``ansible_facts.nvidia.status`` from nvidia_smi_facts when known
    (it tells "not_installed" apart from a command that failed for another reason).
    """
    if not gpu_node:
        return []
    text = nvidia_smi_output or ""
    found = []
    if re.search(r"Driver/library version mismatch", text, re.IGNORECASE):
        found.append(finding(
            "driver_version_mismatch", "NVIDIA driver/library version mismatch",
            "The driver packages were upgraded but the old kernel module is still loaded, so "
            "NVML (user space) and the kernel module disagree.",
            "Reboot the node (or stop every GPU user, then `rmmod nvidia_uvm nvidia_drm "
            "nvidia_modeset nvidia && modprobe nvidia`); the nvidia_driver role reboots for "
            "you unless nvidia_driver_reboot is false.",
            _lines_matching(text, r"mismatch|NVML library version")
            + ["kernel module: %s" % kernel_module_version(proc_version_text)
               if kernel_module_version(proc_version_text) else ""]))
    elif re.search(r"couldn't communicate with the NVIDIA driver", text, re.IGNORECASE):
        found.append(finding(
            "driver_not_loaded", "NVIDIA kernel module not loaded",
            "nvidia-smi is installed but the nvidia kernel module is not loaded (not built for "
            "the running kernel, blocked by Secure Boot, or nouveau holds the GPU).",
            "Check `dkms status` and `journalctl -k | grep -i nvidia`; install headers for "
            "`uname -r` and rebuild, enroll the MOK key or disable Secure Boot, blacklist "
            "nouveau, then `modprobe nvidia` or reboot.",
            _lines_matching(text, r"NVIDIA driver|Make sure")))
    elif facts_status == "not_installed" or str(nvidia_smi_rc) == "127" or (
            re.search(r"(command )?not found|No such file", text, re.IGNORECASE)
            and "NVIDIA-SMI" not in text):
        found.append(finding(
            "driver_not_installed", "No NVIDIA driver on a GPU node",
            "The host is marked k3s_gpu_node but nvidia-smi is missing.",
            "Run the nvidia_driver role (site.yml does) or install the driver for this OS, "
            "then reboot; on Jetson install JetPack, on NixOS set hardware.nvidia.*.",
            _lines_matching(text, r".") or ["nvidia-smi exit code %s" % nvidia_smi_rc]))
    elif re.search(r"No devices were found", text, re.IGNORECASE):
        found.append(finding(
            "driver_no_devices", "Driver loaded but no GPU visible",
            "The driver runs but sees no GPU: the device is passed to a VM/VFIO, fell off the "
            "bus (Xid 79) or is not an NVIDIA GPU the driver supports.",
            "Check `lspci -nn | grep -i nvidia` and `journalctl -k | grep -i xid`; reseat or "
            "reset the GPU, or fix the PCI passthrough.",
            _lines_matching(text, r"No devices")))
    else:
        smi = parse_table(text)["driver_version"]
        module = kernel_module_version(proc_version_text)
        if smi and module and smi != module:
            found.append(finding(
                "driver_version_mismatch", "NVIDIA driver/library version mismatch",
                "nvidia-smi reports driver %s but the loaded kernel module is %s."
                % (smi, module),
                "Reboot the node so the kernel module matches the installed driver.",
                ["nvidia-smi: Driver Version %s" % smi, "kernel module: %s" % module]))
    return found


# ----------------------------------------------------------------------------- toolkit

def _has_nvidia_runtime(config_text):
    return bool(re.search(r"""\.runtimes\.['"]?nvidia['"]?\]""", config_text or ""))


def detect_toolkit(gpu_node, container_runtime, toolkit_mtimes, containerd_config_mtime=None,
                   containerd_config_text=None):
    """Toolkit missing, or installed after K3s generated its containerd config.

    ``toolkit_mtimes``: path -> modification time (epoch seconds) of the
    nvidia-container-runtime binaries found. ``containerd_config_mtime``: modification time
    of <data-dir>/agent/etc/containerd/config.toml, which K3s rewrites at each start.
    """
    if not gpu_node or (container_runtime or "containerd") != "containerd":
        return []
    toolkit_mtimes = toolkit_mtimes or {}
    if not toolkit_mtimes:
        return [finding(
            "toolkit_missing", "NVIDIA container toolkit not installed",
            "No nvidia-container-runtime on this GPU node, so K3s cannot register the nvidia "
            "runtime and GPU pods cannot get the driver's files.",
            "Run the nvidia_container_toolkit role (or install nvidia-container-toolkit), then "
            "restart K3s on this node (`systemctl restart k3s-agent`, or `k3s` on a server).",
            ["nvidia-container-runtime: not found on PATH or in /usr/local/nvidia/toolkit"])]
    if containerd_config_mtime is None or containerd_config_text is None:
        return []
    newest_path = max(toolkit_mtimes, key=lambda p: toolkit_mtimes[p])
    if toolkit_mtimes[newest_path] > float(containerd_config_mtime) \
            and not _has_nvidia_runtime(containerd_config_text):
        return [finding(
            "toolkit_after_k3s", "Toolkit installed after K3s started",
            "K3s detects NVIDIA runtimes only when its agent starts; %s is newer than the "
            "containerd config K3s generated, and that config has no nvidia runtime."
            % newest_path,
            "Restart K3s on this node (`systemctl restart k3s-agent`, or `k3s` on a server); "
            "the k3s roles do this once when the toolkit appears.",
            ["%s mtime %d > config.toml mtime %d" % (
                newest_path, int(toolkit_mtimes[newest_path]), int(float(containerd_config_mtime)))])]
    return []


def detect_containerd_runtime(gpu_node, container_runtime, containerd_config_text):
    """The generated containerd config of K3s has no nvidia runtime."""
    if not gpu_node or (container_runtime or "containerd") != "containerd":
        return []
    if containerd_config_text is None:
        return []
    if _has_nvidia_runtime(containerd_config_text):
        return []
    version = re.search(r"^\s*version\s*=\s*(\d+)", containerd_config_text, re.MULTILINE)
    return [finding(
        "containerd_no_nvidia_runtime", "No nvidia runtime in K3s's containerd config",
        "K3s's generated containerd config (version %s) defines no `nvidia` runtime: K3s did "
        "not find nvidia-container-runtime when it started, or a config template replaced its "
        "auto-detection." % (version.group(1) if version else "?"),
        "Install the toolkit, then restart K3s; if you use config.toml.tmpl/config-v3.toml.tmpl, "
        "start it with `{{ template \"base\" . }}` or let the k3s_containerd_runtime module "
        "write it. Never edit config.toml itself: K3s rewrites it at every start.",
        _lines_matching(containerd_config_text, r"runtimes\.")[:6] or ["no runtimes.nvidia table"])]


# ------------------------------------------------------------------------ log messages

def detect_unknown_runtime_handler(texts):
    """Pods ask for runtimeClassName nvidia but containerd has no such handler."""
    text = _join_texts(texts)
    evidence = _lines_matching(
        text, r"no runtime for \\?\"?nvidia\\?\"? is configured|unknown runtime handler"
              r"|RuntimeHandler \\?\"?nvidia\\?\"? not supported")
    if not evidence:
        return []
    return [finding(
        "unknown_runtime_handler", "Unknown runtime handler nvidia",
        "A RuntimeClass `nvidia` exists (K3s ships it) but this node's containerd has no nvidia "
        "runtime, so pods with runtimeClassName nvidia cannot start.",
        "Make the runtime exist on the node: install the toolkit and restart K3s (see the "
        "containerd findings); or schedule the pod away from nodes without it.",
        evidence)]


def detect_incompatible_strategy(texts):
    """Device plugin started without the nvidia runtime."""
    text = _join_texts(texts)
    evidence = _lines_matching(text, r"Incompatible strategy detected")
    if not evidence:
        return []
    return [finding(
        "device_plugin_incompatible_strategy", "Device plugin: Incompatible strategy detected auto",
        "The device plugin container ran with the default runc runtime, so it sees no NVIDIA "
        "libraries or devices and cannot pick a discovery strategy.",
        "Give the device plugin DaemonSet `runtimeClassName: nvidia` (gpu_device_plugin does "
        "when nvidia is not the default runtime) or make nvidia the default runtime "
        "(`default-runtime: nvidia`).",
        evidence)]


def detect_library_not_found(texts, nixos=False):
    """NVML could not be loaded inside the device plugin (or another GPU pod)."""
    text = _join_texts(texts)
    evidence = _lines_matching(
        text, r"ERROR_LIBRARY_NOT_FOUND|libnvidia-ml\.so\.1: cannot open shared object file")
    if not evidence:
        return []
    if nixos:
        fix = ("On NixOS the driver lives in /run/opengl-driver: set LD_LIBRARY_PATH="
               "/run/opengl-driver/lib and mount /run/opengl-driver and /nix/store read-only "
               "into the device plugin (gpu_device_plugin renders this for NixOS nodes).")
    else:
        fix = ("Run the pod with the nvidia runtime (runtimeClassName nvidia) or a valid CDI "
               "spec, and check that libnvidia-ml.so.1 is in the host's ld cache "
               "(`ldconfig -p | grep nvidia-ml`).")
    return [finding(
        "nvml_library_not_found", "ERROR_LIBRARY_NOT_FOUND (libnvidia-ml.so.1)",
        "The container has no NVIDIA driver libraries: the runtime did not inject them or "
        "they are outside the paths searched.",
        fix, evidence)]


# -------------------------------------------------------------------------------- CDI

def spec_text_driver_versions(text):
    """Driver versions a CDI spec's text names, by ``_cdi``'s rule (the driver files a spec
    mounts: ``lib*.so.<driver version>``, ``firmware/nvidia/<driver version>/``). Text that
    does not parse as a spec is read word by word with the same rule."""
    try:
        spec = _yaml.loads(text or "")
    except ValueError:
        spec = None
    if not isinstance(spec, dict):
        words = re.split(r"[\s\"',\[\]{}]+", text or "")
        spec = {"containerEdits": {"mounts": [{"hostPath": w} for w in words if w]}}
    return _cdi.spec_driver_versions(spec)


def refresh_spec_path(config_text):
    """The spec the collection's self-heal keeps, from the text of its options file; None when
    there is none (or it cannot be read: the stale finding then names nvidia-ctk)."""
    if not config_text:
        return None
    try:
        options = json.loads(config_text)
    except ValueError:
        return None
    return str(options.get("path") or "/etc/cdi/nvidia.yaml") if isinstance(options, dict) else None


def cdi_fix_command(path, refresh_path=None, toolkit_refresh=False):
    """The command that regenerates the spec at ``path``: the unit that owns it (the collection's
    self-heal for ``refresh_path``, the toolkit's nvidia-cdi-refresh for /var/run/cdi/nvidia.yaml
    when the node has it), else nvidia-ctk."""
    if refresh_path and path == refresh_path:
        return ("`systemctl start %s` (the collection's CDI self-heal; `journalctl -u %s` says why it "
                "did not run by itself)" % (_cdi_owner.REFRESH_UNIT, _cdi_owner.REFRESH_UNIT))
    if toolkit_refresh and path == _cdi_owner.TOOLKIT_SPEC:
        return "`systemctl restart nvidia-cdi-refresh.service` (the toolkit's refresh unit writes it)"
    return ("`nvidia-ctk cdi generate --output %s` (or rerun the nvidia_container_toolkit role / the "
            "cdi_spec module)" % path)


def detect_stale_cdi(driver_version, cdi_specs, refresh_path=None, toolkit_refresh=False):
    """A CDI spec that names libraries of another driver version than the running one.

    ``cdi_specs``: path -> spec text (YAML or JSON). ``refresh_path``: the spec the collection's
    self-heal unit keeps (from /etc/k3s-gpu/cdi-refresh.json), ``toolkit_refresh``: the node has
    the toolkit's nvidia-cdi-refresh units; they decide the command the fix names.
    """
    if not driver_version or not cdi_specs:
        return []
    found = []
    for path, text in sorted(cdi_specs.items()):
        versions = spec_text_driver_versions(text)
        stale = [v for v in versions if v != driver_version]
        if stale:
            found.append(finding(
                "stale_cdi_spec", "Stale CDI spec after a driver upgrade",
                "%s references driver libraries of version %s but the running driver is %s; "
                "containers using it fail and the device plugin may crash-loop with 0 GPUs."
                % (path, ", ".join(stale), driver_version),
                "Regenerate it: %s, then restart the device plugin pod."
                % cdi_fix_command(path, refresh_path, toolkit_refresh),
                _lines_matching(text, r"(\.so\.|/)(%s)" % "|".join(re.escape(v) for v in stale))[:4]))
    return found


def detect_duplicate_cdi_devices(cdi_specs):
    """Two spec files (in /etc/cdi and /var/run/cdi) that define the same device."""
    dups = _cdi_owner.duplicates(cdi_specs)
    if not dups:
        return []
    paths = sorted(set(p for dup in dups for p in dup["paths"]))
    toolkit = _cdi_owner.TOOLKIT_SPEC in paths or "/run/cdi/nvidia.yaml" in paths
    if toolkit:
        fix = ("Keep one owner: rerun the nvidia_container_toolkit role (its spec wins: the toolkit's "
               "nvidia-cdi-refresh units are kept off and their %s is removed), or remove the collection's "
               "spec and set nvidia_container_toolkit_cdi_enabled: false to leave the spec to the toolkit."
               % _cdi_owner.TOOLKIT_SPEC)
    else:
        fix = "Keep one spec per device: remove the spec you did not mean to keep."

    return [finding(
        "duplicate_cdi_devices", "Two CDI specs define the same GPU devices",
        "%s define %s; CDI consumers refuse a device defined twice in one folder, and across "
        "/etc/cdi and /var/run/cdi the one in /var/run/cdi silently wins, so a fix to the other "
        "has no effect." % (" and ".join(paths), ", ".join(dup["device"] for dup in dups[:4])
                            + (" and more" if len(dups) > 4 else "")),
        fix,
        ["%s: %s" % (dup["device"], ", ".join(dup["paths"])) for dup in dups])]


# ---------------------------------------------------------------------- node / cluster

def _node_taints(node):
    return ((node or {}).get("spec") or {}).get("taints") or []


def detect_zero_allocatable(node_name, node, gpu_node=True, api_error=None):
    """The node is registered but offers no nvidia.com/gpu (or is not registered)."""
    if not gpu_node or api_error:
        return []
    if node is None:
        return [finding(
            "node_not_registered", "GPU node not registered in the cluster",
            "No Kubernetes node named %s: its K3s agent is not running or joined under another "
            "name." % node_name,
            "Check `systemctl status k3s-agent` and `journalctl -u k3s-agent` on the host; "
            "set k3s_node_name when it registered under another name than the host's kernel node name "
            "(`uname -n`).",
            ["kubectl get node %s: not found" % node_name])]
    allocatable = ((node.get("status") or {}).get("allocatable") or {})
    total = 0
    for key, value in allocatable.items():
        if key == "nvidia.com/gpu" or key.startswith("nvidia.com/mig-"):
            try:
                total += int(str(value))
            except ValueError:
                pass
    if total > 0:
        return []
    return [finding(
        "zero_allocatable_gpus", "0 allocatable GPUs",
        "Node %s advertises no nvidia.com/gpu: no device plugin registered with the kubelet "
        "(not scheduled, crash-looping, or it found no GPU)." % node_name,
        "Look at the device plugin pod on this node (`kubectl -n <ns> logs <pod>`); the other "
        "findings above usually name the reason (runtime, NVML, CDI, taint).",
        ["allocatable: %s" % ", ".join("%s=%s" % kv for kv in sorted(allocatable.items())
                                       if kv[0].startswith("nvidia.com")) or "allocatable: "
         "no nvidia.com/* resource"])]


def parse_taint(text):
    """``key[=value]:Effect`` (K3s node-taint syntax) -> dict or None."""
    match = re.match(r"^\s*([^=:\s]+)(?:=([^:\s]*))?:(NoSchedule|PreferNoSchedule|NoExecute)\s*$",
                     str(text))
    if not match:
        return None
    return {"key": match.group(1), "value": match.group(2) or "", "effect": match.group(3)}


def detect_foreign_gpu_taint(taints, gpu_node=True):
    """A GPU-looking taint whose key is not nvidia.com/gpu: operator daemonsets skip the node.

    ``taints``: list of dicts (key, value, effect) or K3s ``key=value:Effect`` strings.
    """
    if not gpu_node:
        return []
    evidence = []
    for taint in taints or []:
        if isinstance(taint, str):
            taint = parse_taint(taint)
        if not taint or taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        key = taint.get("key") or ""
        if key == GPU_TAINT_KEY or key.startswith("node.kubernetes.io/"):
            continue
        text = "%s=%s:%s" % (key, taint.get("value", ""), taint.get("effect"))
        if re.search(r"gpu|nvidia|accelerator|cuda", key, re.IGNORECASE) and text not in evidence:
            evidence.append(text)
    if not evidence:
        return []
    return [finding(
        "foreign_gpu_taint", "GPU taint with a foreign key",
        "The node is tainted with a key other than nvidia.com/gpu; the GPU Operator's and the "
        "device plugin's daemonsets tolerate only nvidia.com/gpu, so they never schedule here.",
        "Use the key nvidia.com/gpu for the GPU taint (the k3s roles' default), e.g. "
        "`nvidia.com/gpu=true:NoSchedule`, or add a matching toleration to "
        "daemonsets.tolerations / gpu_device_plugin_tolerations.",
        evidence)]


# ------------------------------------------------------------------------ kernel config

def detect_kernel_config(kernel_config_text, required=K3S_KERNEL_OPTIONS):
    """Kernel options K3s networking needs, missing from /proc/config.gz (Jetson L4T)."""
    if not kernel_config_text:
        return []
    text = _ANSI.sub("", kernel_config_text)
    missing = []
    for option in required:
        match = re.search(r"^%s=(y|m)\s*$" % re.escape(option), text, re.MULTILINE)
        if not match:
            missing.append(option)
    if not missing:
        return []
    return [finding(
        "kernel_config_missing", "Kernel config missing for K3s networking",
        "The running kernel lacks options flannel/kube-proxy need (%s); typical on Jetson L4T "
        "kernels: CoreDNS, metrics-server and local-path-provisioner crash-loop and services "
        "do not resolve." % ", ".join(missing),
        "Build or install a kernel with these options (=y or =m), e.g. NVIDIA's L4T kernel "
        "rebuilt with them, then reboot; the preflight role checks this before K3s.",
        ["%s is not set" % option for option in missing])]


# ------------------------------------------------------------- registered results

def slurped_texts(results):
    """item (or source) -> decoded text for looped ``slurp`` results that read a file."""
    import base64
    texts = {}
    for result in results or []:
        if "content" not in result:
            continue
        key = str(result.get("item") or result.get("source"))
        texts[key] = base64.b64decode(result["content"]).decode("utf-8", "replace")
    return texts


# ------------------------------------------------------------------------- output

def finding_text(item):
    """One readable paragraph for a finding."""
    text = "[%s] %s. Cause: %s Fix: %s" % (item.get("id"), item.get("title"), item.get("cause"),
                                           item.get("fix"))
    if item.get("evidence"):
        text += " Evidence: %s" % " | ".join(item["evidence"][:3])
    return text


def host_summary(host, hostvars):
    """One line per host for the end of the diagnose playbook."""
    hv = hostvars.get(host, {}) or {}
    findings = hv.get("diagnose_findings")
    if findings is None:
        return "%s: not checked (unreachable or failed before the checks)" % host
    if not findings:
        return "%s: OK, no known GPU failure mode" % host
    return "%s: %d finding(s): %s" % (host, len(findings), ", ".join(f["id"] for f in findings))


# ----------------------------------------------------------------------------- all

def run_all(data):
    """Run every detector on one host's collected data.

    ``data`` keys (each optional): gpu_node (bool), container_runtime, nixos (bool),
    nvidia_status (from nvidia_smi_facts), nvidia_smi_rc, nvidia_smi_output, proc_driver_version, driver_version, toolkit_mtimes,
    containerd_config_text, containerd_config_mtime, logs (name -> text), cdi_specs
    (path -> text), cdi_refresh_config (text of /etc/k3s-gpu/cdi-refresh.json, the options of
    the collection's CDI self-heal), toolkit_cdi_refresh (bool: the toolkit's nvidia-cdi-refresh
    units exist), node_name, node (node JSON), api_error, config_taints (list of K3s taint
    strings), kernel_config.
    """
    data = data or {}
    gpu = bool(data.get("gpu_node"))
    runtime = data.get("container_runtime") or "containerd"
    logs = data.get("logs") or {}
    found = []
    found += detect_driver(data.get("nvidia_smi_rc"), data.get("nvidia_smi_output"),
                           data.get("proc_driver_version"), gpu, data.get("nvidia_status"))
    toolkit = detect_toolkit(gpu, runtime, data.get("toolkit_mtimes"),
                             data.get("containerd_config_mtime"),
                             data.get("containerd_config_text"))
    found += toolkit
    if not toolkit:
        found += detect_containerd_runtime(gpu, runtime, data.get("containerd_config_text"))
    found += detect_unknown_runtime_handler(logs)
    found += detect_incompatible_strategy(logs)
    found += detect_library_not_found(logs, bool(data.get("nixos")))
    driver_version = data.get("driver_version")
    if not driver_version:
        driver_version = parse_table(data.get("nvidia_smi_output"))["driver_version"]
    found += detect_stale_cdi(driver_version, data.get("cdi_specs"), refresh_spec_path(data.get("cdi_refresh_config")),
                              bool(data.get("toolkit_cdi_refresh")))
    found += detect_duplicate_cdi_devices(data.get("cdi_specs"))
    node = data.get("node")
    taints = list(data.get("config_taints") or []) + list(_node_taints(node))
    found += detect_foreign_gpu_taint(taints, gpu)
    if data.get("node_name"):
        found += detect_zero_allocatable(data["node_name"], node, gpu, data.get("api_error"))
    found += detect_kernel_config(data.get("kernel_config"))
    return found
