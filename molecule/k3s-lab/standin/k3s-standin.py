# -*- coding: utf-8 -*-
"""K3S STAND-IN for the k3s-lab molecule scenarios.  THIS IS NOT K3s.

No interpreter line here: prepare (standin/tasks/release.yml) adds #!/usr/bin/python3
when it builds a stand-in "release" from this file.

The real K3s release cannot be downloaded on the machine that runs the lab, so the
k3s-lab scenarios install this script as /usr/local/bin/k3s through k3s_airgap_dir.
It mimics the parts of K3s that the k3s_server/k3s_agent roles and the
upgrade/reset playbooks talk to, and nothing else:

* ``k3s --version`` prints ``k3s version <VERSION> (stand-in)``;
* ``k3s server`` / ``k3s agent`` read /etc/rancher/k3s/config.yaml and
  config.yaml.d/*.yaml, check the token (``token-file``) the way a join would,
  write ``<data-dir>/server/token`` and ``node-token`` (0600) and
  /etc/rancher/k3s/k3s.yaml (``write-kubeconfig-mode``), render
  ``<data-dir>/agent/etc/containerd/config.toml`` from ``config-v3.toml.tmpl`` /
  ``config.toml.tmpl`` (only the ``{{ template "base" . }}`` include) or from the
  NVIDIA runtimes found on PATH, refuse to start when ``default-runtime`` names a
  runtime that is not there, and tell systemd READY=1 (Type=notify) from the
  main process;
* a release built with drop-ins (``k3s_lab_drop_ins: true`` in standin/tasks/release.yml,
  one setting per stand-in release because which real patch releases have them is not
  recorded) writes ``imports = ["<dir>/config-v3.toml.d/*.toml"]`` (``config.toml.d``
  with config version 2) into that config.toml, as newer K3s releases do, and refuses to
  start when an imported file is not TOML (containerd would);
* servers listen on the supervisor port with a plain-text JSON protocol (not TLS,
  not the Kubernetes API); agents and joining servers register there with their
  token, labels and taints and send heartbeats;
* ``k3s kubectl get node(s) [NAME] -o json``, ``cordon``, ``uncordon``, ``drain``
  answer from that registry; ``k3s etcd-snapshot save`` writes a snapshot marker;
* for the driver-upgrade scenario (section "workloads"): a node reports allocatable
  ``nvidia.com/gpu`` (the GPUs ``nvidia-smi -L`` lists when K3s starts, 0 when it fails; none
  without nvidia-smi), node annotations, and pod/PodDisruptionBudget records (``create -f``
  of JSON, ``get pods``, ``label``, ``delete``) that ``drain`` evicts, client-side like kubectl:
  DaemonSet pods skipped with ``--ignore-daemonsets``, pods without a controller only with
  ``--force``, ``--pod-selector``, a PDB that allows no disruption blocks the eviction until
  ``--timeout``. Evicted pods are removed, never rescheduled.

It proves that the roles wire files, tokens, services and joins together
correctly.  It proves nothing about K3s itself: no Kubernetes API, no kubelet,
no containerd, no running pods (pod records only), no scheduler, no CNI, no etcd.
"""

import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import sys
import threading
import time

VERSION = "@@K3S_STANDIN_VERSION@@"
# Whether this stand-in release's generated containerd config imports the drop-in folder.
DROP_INS_SETTING = "@@K3S_STANDIN_DROPINS@@"
DROP_INS = DROP_INS_SETTING == "true"
CONFIG = "/etc/rancher/k3s/config.yaml"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
HEARTBEAT_S = 2
READY_WINDOW_S = 7
NVIDIA_RUNTIMES = (
    ("nvidia", "nvidia-container-runtime"),
    ("nvidia-experimental", "nvidia-container-runtime-experimental"),
    ("nvidia-cdi", "nvidia-container-runtime.cdi"),
)
GUARD = re.compile(r'\{\{ if not \(index \.ExtraRuntimes "([^"]+)"\)\.BinaryName \}\}\n(.*?)\{\{ end \}\}\n', re.S)
LOCK = threading.Lock()


def die(msg, rc=1):
    sys.stderr.write("k3s-standin: %s\n" % msg)
    sys.exit(rc)


# ---------------------------------------------------------------- config
def _scalar(text):
    text = text.strip()
    if text[:1] in ("'", '"') and text[-1:] == text[:1]:
        return text[1:-1].replace("''", "'") if text[0] == "'" else text[1:-1]
    low = text.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("null", "~", ""):
        return None
    return text


def parse_flat_yaml(path):
    """Parse the flat YAML K3s config files use (key: scalar, key: list)."""
    data, key = {}, None
    with open(path) as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#") or line.strip() == "---":
                continue
            stripped = line.strip()
            if stripped.startswith("- ") or stripped == "-":
                if key is None:
                    die("%s: list item without a key: %r" % (path, line))
                data.setdefault(key, [])
                if not isinstance(data[key], list):
                    data[key] = []
                data[key].append(_scalar(stripped[1:]))
                continue
            if line[:1].isspace() or ":" not in line:
                die("%s: the stand-in parses only flat 'key: value' YAML: %r" % (path, line))
            key, _sep, value = line.partition(":")
            key = key.strip().strip("'\"")
            value = value.strip()
            if value == "":
                data[key] = []
            elif value.startswith("[") and value.endswith("]"):
                data[key] = [_scalar(v) for v in value[1:-1].split(",") if v.strip()]
            else:
                data[key] = _scalar(value)
    return data


def load_config():
    config = {}
    files = [CONFIG] if os.path.exists(CONFIG) else []
    dropins = CONFIG + ".d"
    if os.path.isdir(dropins):
        files += [os.path.join(dropins, f) for f in sorted(os.listdir(dropins)) if f.endswith((".yaml", ".yml"))]
    for path in files:
        for key, value in parse_flat_yaml(path).items():
            if key.endswith("+"):
                base = key[:-1]
                old = config.get(base, [])
                config[base] = (old if isinstance(old, list) else [old]) + (value if isinstance(value, list) else [value])
            else:
                config[key] = value
    return config


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def data_dir(config):
    return config.get("data-dir") or "/var/lib/rancher/k3s"


def node_name(config):
    return str(config.get("node-name") or socket.gethostname()).lower()


def write_file(path, content, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".standin-tmp"
    with open(tmp, "w") as handle:
        handle.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def event(config, name):
    path = os.path.join(data_dir(config), "standin-events.log")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as handle:
        handle.write("%.3f %s %s %s\n" % (time.time(), name, VERSION, node_name(config)))


def read_token(config, required):
    if config.get("token-file"):
        try:
            with open(config["token-file"]) as handle:
                token = handle.read().strip()
        except OSError as exc:
            die("cannot read token-file: %s" % exc)
        if token:
            return token
    if config.get("token"):
        return str(config["token"])
    if required:
        die("a token is required to join a cluster (token or token-file)")
    return None


def passphrase(token):
    """K10<hash>::server:<secret> -> <secret>; a plain secret stays as it is."""
    if token and token.startswith("K10") and "::" in token:
        return token.split("::", 1)[1].split(":", 1)[-1]
    return token


def upstream(config):
    url = str(config.get("server") or "")
    if not url:
        return None
    hostport = url.split("://", 1)[-1].split("/", 1)[0]
    host, _sep, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, "6443"
    return host.strip("[]"), int(port)


# ---------------------------------------------------------------- containerd
def _ver_tuple(version):
    core = version.lstrip("v").split("+", 1)[0].split("-", 1)[0]
    try:
        return tuple(int(p) for p in core.split("."))
    except ValueError:
        return (0, 0, 0)


def containerd_v3():
    major, minor, patch = (_ver_tuple(VERSION) + (0, 0, 0))[:3]
    return (major, minor) > (1, 32) or (minor == 32 and patch >= 2) or (minor == 31 and patch >= 6)


def render_containerd(config):
    ddir = data_dir(config)
    folder = os.path.join(ddir, "agent", "etc", "containerd")
    v3 = containerd_v3()
    table = 'plugins."io.containerd.cri.v1.runtime".containerd' if v3 else 'plugins."io.containerd.grpc.v1.cri".containerd'
    found = {}
    for name, binary in NVIDIA_RUNTIMES:
        path = shutil.which(binary) or (
            os.path.join("/usr/local/nvidia/toolkit", binary)
            if os.path.exists(os.path.join("/usr/local/nvidia/toolkit", binary)) else None)
        if path:
            found[name] = path
    default = config.get("default-runtime") or "runc"
    # K3s uses the systemd cgroup driver when systemd runs the host on cgroup v2.
    systemd_cgroup = os.path.isdir("/run/systemd/system") and os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    lines = ["# generated by the K3S STAND-IN (not K3s)", "version = %d" % (3 if v3 else 2)]
    drop_in_dir = os.path.join(folder, "config-v3.toml.d" if v3 else "config.toml.d")
    if DROP_INS:
        lines.append('imports = ["%s/*.toml"]' % drop_in_dir)
    lines += ["", "[%s]" % table, '  default_runtime_name = "%s"' % default, ""]
    for name, binary in [("runc", None)] + sorted(found.items()):
        lines += ['[%s.runtimes."%s"]' % (table, name), '  runtime_type = "io.containerd.runc.v2"',
                  '[%s.runtimes."%s".options]' % (table, name)]
        if binary:
            lines.append('  BinaryName = "%s"' % binary)
        lines += ["  SystemdCgroup = %s" % ("true" if systemd_cgroup else "false"), ""]
    base = "\n".join(lines) + "\n"
    candidates = ["config-v3.toml.tmpl", "config.toml.tmpl"] if v3 else ["config.toml.tmpl"]
    content = base
    for name in candidates:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path) as handle:
                template = handle.read()
            content = re.sub(r'\{\{-?\s*template\s+"base"\s+\.\s*-?\}\}', lambda match: base, template)
            # {{ if not (index .ExtraRuntimes "NAME").BinaryName }} ... {{ end }}: the block is
            # kept only when K3s did not detect runtime NAME itself.
            content = GUARD.sub(lambda m: "" if m.group(1) in found else m.group(2), content)
            if "{{" in content:
                die("%s: the stand-in renders only the base include and ExtraRuntimes guards" % path)
            break
    write_file(os.path.join(folder, "config.toml"), content, 0o600)
    if DROP_INS:
        check_drop_ins(drop_in_dir)
    if default != "runc" and default not in found:
        die('default runtime "%s" was not detected (K3s detects %s on PATH and in '
            '/usr/local/nvidia/toolkit); refusing to start' % (default, ", ".join(binary for _name, binary in NVIDIA_RUNTIMES)))


def check_drop_ins(folder):
    """containerd refuses to start on an imported file that is not TOML; so does the stand-in."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11: nothing to check with
        return
    for path in sorted(glob.glob(os.path.join(folder, "*.toml"))):
        try:
            with open(path, "rb") as handle:
                tomllib.load(handle)
        except (OSError, ValueError) as exc:
            die("containerd (stand-in check): failed to load the imported %s: %s" % (path, exc))


# ---------------------------------------------------------------- registry
class Registry(object):
    def __init__(self, path, secret, etcd):
        self.path = path
        self.secret = secret
        self.state = {"passphrase": secret, "etcd": etcd, "nodes": {}, "events": []}
        if os.path.exists(path):
            with open(path) as handle:
                self.state = json.load(handle)
            if self.state.get("passphrase") != secret:
                die("bootstrap data already found and encrypted with a different token")
        self.save()

    def save(self):
        write_file(self.path, json.dumps(self.state, indent=1, sort_keys=True), 0o600)

    def handle(self, request):
        if passphrase(request.get("token")) != self.secret:
            return {"ok": False, "error": "unauthorized: invalid token"}
        op = request.get("op")
        nodes = self.state["nodes"]
        with LOCK:
            now = time.time()
            if op == "join":
                node = request["node"]
                old = nodes.get(node["name"], {})
                node["unschedulable"] = old.get("unschedulable", False)
                node["annotations"] = old.get("annotations", {})
                node["joined"] = now
                node["seen"] = now
                nodes[node["name"]] = node
                self.state["events"].append([now, "join", node["name"], node.get("version")])
            elif op == "heartbeat":
                if request["name"] not in nodes:
                    return {"ok": False, "error": "node %s is not registered" % request["name"]}
                nodes[request["name"]]["seen"] = now
                return {"ok": True}
            elif op == "get":
                return {"ok": True, "nodes": nodes, "now": now}
            elif op in WORKLOAD_OPS:
                reply = workload_op(self.state, request, now)
                if reply.get("ok") and op not in ("pods",):
                    self.save()
                return reply
            elif op in ("cordon", "uncordon", "drain"):
                if request["name"] not in nodes:
                    return {"ok": False, "error": 'nodes "%s" not found' % request["name"]}
                nodes[request["name"]]["unschedulable"] = op != "uncordon"
                self.state["events"].append([now, op, request["name"], None])
            else:
                return {"ok": False, "error": "unknown op %r" % op}
            self.save()
        return {"ok": True}


def call(address, request, timeout=5):
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data.decode() or "{}")


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        try:
            request = json.loads(self.rfile.readline().decode())
            reply = self.server.answer(request)
        except Exception as exc:  # a stand-in reports, it does not crash
            reply = {"ok": False, "error": "stand-in: %s" % exc}
        self.wfile.write((json.dumps(reply) + "\n").encode())


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


# ---------------------------------------------------------------- daemons
def notify(state):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), address)


def parse_taint(text):
    key, _sep, effect = text.rpartition(":")
    key, _sep, value = key.partition("=")
    return {"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect}


def node_record(config, role):
    labels = {"kubernetes.io/hostname": node_name(config), "k3s-standin": "true"}
    for item in as_list(config.get("node-label")):
        key, _sep, value = str(item).partition("=")
        labels[key] = value
    if role == "server":
        labels["node-role.kubernetes.io/control-plane"] = "true"
    return {"name": node_name(config), "role": role, "version": VERSION, "labels": labels,
            "taints": [parse_taint(str(t)) for t in as_list(config.get("node-taint"))],
            "runtime": "docker://stand-in" if config.get("docker") else "containerd://stand-in",
            "gpus": gpu_count()}


def on_term(config):
    def handler(signum, frame):
        event(config, "stop")
        os._exit(0)
    return handler


def join_loop(config, address, token, record):
    while True:
        try:
            reply = call(address, {"op": "join", "token": token, "node": record})
            if reply.get("ok"):
                return
            sys.stderr.write("k3s-standin: failed to join %s:%s: %s\n" % (address + (reply.get("error"),)))
        except (OSError, ValueError) as exc:
            sys.stderr.write("k3s-standin: waiting for %s:%s: %s\n" % (address + (exc,)))
        sys.stderr.flush()
        time.sleep(HEARTBEAT_S)


def heartbeat_loop(address, token, record):
    while True:
        time.sleep(HEARTBEAT_S)
        try:
            reply = call(address, {"op": "heartbeat", "token": token, "name": record["name"]})
            if not reply.get("ok"):
                call(address, {"op": "join", "token": token, "node": record})
        except (OSError, ValueError):
            pass


def run_server(config):
    ddir = data_dir(config)
    join = upstream(config)
    token = read_token(config, required=bool(join))
    token_path = os.path.join(ddir, "server", "token")
    if token is None and os.path.exists(token_path):
        with open(token_path) as handle:
            token = handle.read().strip()
    secret = passphrase(token) or secrets.token_hex(16)
    ca_hash = hashlib.sha256(("stand-in-ca:" + secret).encode()).hexdigest()
    full = "K10%s::server:%s" % (ca_hash, secret)
    event(config, "start")
    signal.signal(signal.SIGTERM, on_term(config))
    if not config.get("docker"):
        render_containerd(config)
    etcd = bool(config.get("cluster-init")) or bool(join)
    db = os.path.join(ddir, "server", "db")
    os.makedirs(os.path.join(db, "etcd") if etcd else db, exist_ok=True)
    if not etcd and not config.get("datastore-endpoint"):
        write_file(os.path.join(db, "state.db"), "stand-in sqlite marker\n", 0o600)
    registry = None if join else Registry(os.path.join(ddir, "server", "standin-cluster.json"), secret, etcd)
    port = int(config.get("https-listen-port") or 6443)
    server = Server(("0.0.0.0", port), Handler)
    server.answer = (lambda request: call(join, request)) if join else registry.handle
    threading.Thread(target=server.serve_forever, daemon=True).start()
    record = node_record(config, "server")
    if etcd:
        record["labels"]["node-role.kubernetes.io/etcd"] = "true"
    address = join or ("127.0.0.1", port)
    join_loop(config, address, full, record)
    write_file(token_path, full + "\n", 0o600)
    write_file(os.path.join(ddir, "server", "node-token"), full + "\n", 0o600)
    # K3s writes its packaged manifests here at start; add-ons drop theirs beside them.
    os.makedirs(os.path.join(ddir, "server", "manifests"), mode=0o700, exist_ok=True)
    mode = int(str(config.get("write-kubeconfig-mode") or "0600"), 8)
    write_file(config.get("write-kubeconfig") or KUBECONFIG, (
        "# K3S STAND-IN kubeconfig: it does not reach a Kubernetes API\n"
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n"
        "    certificate-authority-data: U1RBTkQtSU4=\n    server: https://127.0.0.1:%d\n"
        "  name: default\ncontexts:\n- context:\n    cluster: default\n    user: default\n"
        "  name: default\ncurrent-context: default\nusers:\n- name: default\n  user:\n"
        "    client-certificate-data: U1RBTkQtSU4=\n    client-key-data: U1RBTkQtSU4=\n") % port, mode)
    os.chmod(config.get("write-kubeconfig") or KUBECONFIG, mode)
    notify("READY=1")
    event(config, "ready")
    heartbeat_loop(address, full, record)


def run_agent(config):
    join = upstream(config)
    if not join:
        die("an agent needs the server URL (server: https://<server>:6443)")
    token = read_token(config, required=True)
    event(config, "start")
    signal.signal(signal.SIGTERM, on_term(config))
    if not config.get("docker"):
        render_containerd(config)
    record = node_record(config, "agent")
    join_loop(config, join, token, record)
    notify("READY=1")
    event(config, "ready")
    heartbeat_loop(join, token, record)


# ---------------------------------------------------------------- clients
def client_address(config):
    join = upstream(config)
    return join or ("127.0.0.1", int(config.get("https-listen-port") or 6443))


def client_token(config):
    path = os.path.join(data_dir(config), "server", "token")
    if os.path.exists(path):
        with open(path) as handle:
            return handle.read().strip()
    return read_token(config, required=True)


def node_json(node, now):
    ready = now - node.get("seen", 0) <= READY_WINDOW_S
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node["name"], "labels": node["labels"],
                     "annotations": dict(node.get("annotations") or {},
                                         **{"k3s-standin": "this node is served by the K3S STAND-IN, not K3s"})},
        "spec": {"taints": node["taints"], "unschedulable": node.get("unschedulable", False)},
        "status": dict({"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                        "lastHeartbeatTime": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                           time.gmtime(node.get("seen", 0)))}],
                        "nodeInfo": {"kubeletVersion": node["version"], "containerRuntimeVersion": node["runtime"]}},
                       **node_resources(node)),
    }


def kubectl(args):
    config = load_config()
    if kubectl_workloads(config, args):
        return
    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-o", "--output", "-n", "--namespace", "--timeout", "--grace-period"):
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    try:
        if words[:1] == ["get"] and len(words) >= 2 and words[1] in ("node", "nodes", "no"):
            reply = call(client_address(config), {"op": "get", "token": client_token(config)})
            if not reply.get("ok"):
                die("error: %s" % reply.get("error"))
            nodes = reply["nodes"]
            if len(words) >= 3:
                if words[2] not in nodes:
                    die('Error from server (NotFound): nodes "%s" not found' % words[2])
                print(json.dumps(node_json(nodes[words[2]], reply["now"]), indent=2))
            else:
                print(json.dumps({"apiVersion": "v1", "kind": "List",
                                  "items": [node_json(nodes[name], reply["now"]) for name in sorted(nodes)]}, indent=2))
            return
        if words[:1] and words[0] in ("cordon", "uncordon", "drain") and len(words) >= 2:
            reply = call(client_address(config), {"op": words[0], "name": words[1], "token": client_token(config)})
            if not reply.get("ok"):
                die("error: %s" % reply.get("error"))
            print("node/%s %s" % (words[1], {"cordon": "cordoned", "uncordon": "uncordoned", "drain": "drained"}[words[0]]))
            return
    except OSError as exc:
        die("The connection to the server was refused (%s)" % exc)
    die("the K3S STAND-IN implements only: kubectl get node(s) [NAME] -o json, cordon, uncordon, drain, and the "
        "workload commands (get pods, create -f, delete, label, annotate)", 2)


# ---------------------------------------------------------------- workloads (driver upgrade)
# Only what playbooks/driver_upgrade.yml asks of a cluster: allocatable GPUs, node
# annotations, pods and PodDisruptionBudgets, and a drain that evicts like kubectl's.
WORKLOAD_OPS = ("annotate", "pods", "create", "label", "delete", "evict")
VALUE_FLAGS = ("-o", "--output", "-n", "--namespace", "--timeout", "--grace-period", "-l", "--selector",
               "--field-selector", "--pod-selector", "-f", "--filename")


def gpu_count():
    """GPUs the node offers when K3s starts: those ``nvidia-smi -L`` lists (0 when it fails),
    None without nvidia-smi. Stands in for the device plugin registering with the kubelet."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        import subprocess
        proc = subprocess.run([smi, "-L"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30, check=False)
    except (OSError, ValueError):
        return 0
    if proc.returncode != 0:
        return 0
    return len([line for line in proc.stdout.decode("utf-8", "replace").splitlines() if line.startswith("GPU ")])


def node_resources(node):
    if node.get("gpus") is None:
        return {}
    resources = {"cpu": "2", "pods": "110", "nvidia.com/gpu": str(node["gpus"])}
    return {"capacity": dict(resources), "allocatable": dict(resources)}


def _selects(match_labels, labels):
    return all(labels.get(key) == value for key, value in (match_labels or {}).items())


def _parse_selector(text):
    selector = {}
    for part in filter(None, (text or "").split(",")):
        key, _sep, value = part.partition("=")
        selector[key.strip()] = value.strip()
    return selector


def _pod_key(pod):
    return "%s/%s" % (pod["metadata"].get("namespace", "default"), pod["metadata"]["name"])


def _eviction_blocked(state, pod):
    """The PDB that forbids evicting ``pod`` now, or None."""
    labels = pod["metadata"].get("labels") or {}
    namespace = pod["metadata"].get("namespace", "default")
    for pdb in state.get("pdbs", {}).values():
        if pdb["metadata"].get("namespace", "default") != namespace:
            continue
        if not _selects(pdb["spec"].get("selector", {}).get("matchLabels"), labels):
            continue
        covered = [p for p in state.get("pods", {}).values()
                   if p["metadata"].get("namespace", "default") == namespace
                   and _selects(pdb["spec"].get("selector", {}).get("matchLabels"), p["metadata"].get("labels") or {})]
        spec = pdb["spec"]
        too_few = isinstance(spec.get("minAvailable"), int) and len(covered) - 1 < spec["minAvailable"]
        if spec.get("maxUnavailable") == 0 or too_few:
            return pdb
    return None


def workload_op(state, request, now):
    """The registry side (under the registry lock): one small operation per request."""
    op = request["op"]
    pods = state.setdefault("pods", {})
    pdbs = state.setdefault("pdbs", {})
    if op == "pods":
        return {"ok": True, "pods": [pods[k] for k in sorted(pods)]}
    if op == "create":
        for item in request["items"]:
            item.setdefault("metadata", {}).setdefault("namespace", "default")
            key = _pod_key(item)
            store = pods if item.get("kind") == "Pod" else pdbs if item.get("kind") == "PodDisruptionBudget" else None
            if store is None:
                return {"ok": False, "error": "the stand-in creates only Pod and PodDisruptionBudget, not %s" % item.get("kind")}
            if key in store:
                return {"ok": False, "error": 'Error from server (AlreadyExists): %s "%s" already exists'
                                              % (item["kind"], item["metadata"]["name"])}
            if item["kind"] == "Pod":
                if item.get("spec", {}).get("nodeName") not in state["nodes"]:
                    return {"ok": False, "error": "stand-in pods need spec.nodeName of a registered node"}
                item["status"] = {"phase": "Running"}
            store[key] = item
        state["events"].append([now, "create", ",".join(_pod_key(i) for i in request["items"]), None])
        return {"ok": True}
    if op == "delete":
        store = pods if request["kind"] == "pod" else pdbs
        if store.pop(request["key"], None) is None:
            return {"ok": False, "error": 'Error from server (NotFound): %s "%s" not found' % (request["kind"], request["key"])}
        state["events"].append([now, "delete", request["key"], request["kind"]])
        return {"ok": True}
    if op == "label":
        pod = pods.get(request["key"])
        if pod is None:
            return {"ok": False, "error": 'Error from server (NotFound): pods "%s" not found' % request["key"]}
        pod["metadata"].setdefault("labels", {}).update(request["labels"])
        return {"ok": True}
    if op == "annotate":
        node = state["nodes"].get(request["name"])
        if node is None:
            return {"ok": False, "error": 'Error from server (NotFound): nodes "%s" not found' % request["name"]}
        annotations = node.setdefault("annotations", {})
        for key, value in request["set"].items():
            annotations[key] = value
        for key in request["remove"]:
            annotations.pop(key, None)
        state["events"].append([now, "annotate", request["name"], json.dumps(request["set"], sort_keys=True)
                                if request["set"] else "-" + ",".join(request["remove"])])
        return {"ok": True}
    # evict
    pod = pods.get(request["key"])
    if pod is None:
        return {"ok": True, "gone": True}
    pdb = _eviction_blocked(state, pod)
    if pdb is not None:
        return {"ok": False, "code": 429, "error": "Cannot evict pod as it would violate the pod's disruption budget."}
    del pods[request["key"]]
    state["events"].append([now, "evict", request["key"], pod["spec"].get("nodeName")])
    return {"ok": True}


def parse_kubectl(args):
    """(words, flags) of a kubectl command line: --flag=value, --flag value, -n NS, -A."""
    words, flags, i = [], {}, 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            key, _sep, value = arg.partition("=")
            flags[key] = value
        elif arg in VALUE_FLAGS and i + 1 < len(args):
            flags[arg] = args[i + 1]
            i += 1
        elif arg.startswith("-"):
            flags[arg] = True
        else:
            words.append(arg)
        i += 1
    return words, flags


def _request(config, request):
    request["token"] = client_token(config)
    reply = call(client_address(config), request)
    if not reply.get("ok"):
        die(reply.get("error") or "error: %s" % reply, 1)
    return reply


def _kind_and_name(words):
    """('pod', 'NAME') from ['pod', 'NAME'] or ['pod/NAME']."""
    if words and "/" in words[0]:
        kind, _sep, name = words[0].partition("/")
        return kind, name
    return (words[0] if words else ""), (words[1] if len(words) > 1 else "")


def _drain(config, node, flags):
    """kubectl drain, client-side like kubectl: cordon, pick the pods, evict each until --timeout."""
    timeout = float(str(flags.get("--timeout", "0")).rstrip("s") or 0) or 86400.0
    _request(config, {"op": "drain", "name": node})
    print("node/%s cordoned" % node)
    selector = _parse_selector(flags.get("--pod-selector"))
    pods = [p for p in _request(config, {"op": "pods"})["pods"]
            if p["spec"].get("nodeName") == node and _selects(selector, p["metadata"].get("labels") or {})]
    evict, problems = [], []
    for pod in pods:
        owners = [o.get("kind") for o in pod["metadata"].get("ownerReferences") or []]
        if "DaemonSet" in owners:
            if not flags.get("--ignore-daemonsets"):
                problems.append("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): %s" % _pod_key(pod))
            else:
                print("Warning: ignoring DaemonSet-managed Pods: %s" % _pod_key(pod))
            continue
        if not owners and not flags.get("--force"):
            problems.append("cannot delete Pods that declare no controller (use --force to override): %s" % _pod_key(pod))
            continue
        evict.append(pod)
    if problems:
        die("error: unable to drain node \"%s\" due to error: %s, continuing command...\n"
            "There are pending nodes to be drained:\n %s" % (node, "; ".join(problems), node), 1)
    deadline = time.time() + timeout
    for pod in evict:
        key = _pod_key(pod)
        while True:
            reply = call(client_address(config), {"op": "evict", "key": key, "token": client_token(config)})
            if reply.get("ok"):
                print("evicting pod %s\npod/%s evicted" % (key, pod["metadata"]["name"]))
                break
            sys.stderr.write('error when evicting pods/"%s" -n "%s" (will retry after 5s): %s\n'
                             % (pod["metadata"]["name"], pod["metadata"].get("namespace", "default"), reply.get("error")))
            if time.time() + 1 > deadline:
                die("error: unable to drain node \"%s\" due to error: [error when evicting pods/\"%s\" -n \"%s\": "
                    "global timeout reached: %s], continuing command...\nThere are pending nodes to be drained:\n %s"
                    % (node, pod["metadata"]["name"], pod["metadata"].get("namespace", "default"),
                       flags.get("--timeout"), node), 1)
            time.sleep(1)
    print("node/%s drained" % node)


def kubectl_workloads(config, args):
    """The workload commands; False for those the rest of kubectl() answers."""
    words, flags = parse_kubectl(args)
    verb = words[0] if words else ""
    try:
        if verb == "get" and len(words) >= 2 and words[1] in ("pod", "pods", "po"):
            pods = _request(config, {"op": "pods"})["pods"]
            namespace = None if flags.get("-A") or flags.get("--all-namespaces") else flags.get("-n", flags.get("--namespace", "default"))
            field = flags.get("--field-selector", "")
            node = field.split("=", 1)[1] if field.startswith("spec.nodeName=") else None
            if field and node is None:
                die("the K3S STAND-IN understands only --field-selector spec.nodeName=NAME", 2)
            items = [p for p in pods if (namespace is None or p["metadata"]["namespace"] == namespace)
                     and (node is None or p["spec"].get("nodeName") == node)
                     and _selects(_parse_selector(flags.get("-l") or flags.get("--selector")), p["metadata"].get("labels") or {})]
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
            return True
        if verb == "create" and (flags.get("-f") or flags.get("--filename")):
            with open(flags.get("-f") or flags.get("--filename")) as handle:
                doc = json.load(handle)
            items = doc.get("items", []) if doc.get("kind") == "List" else [doc]
            _request(config, {"op": "create", "items": items})
            for item in items:
                print("%s/%s created" % (item["kind"].lower(), item["metadata"]["name"]))
            return True
        if verb == "delete" and len(words) >= 2:
            kind, name = _kind_and_name(words[1:])
            kind = {"pod": "pod", "pods": "pod", "pdb": "pdb", "poddisruptionbudget": "pdb"}.get(kind)
            if kind is None:
                die("the K3S STAND-IN deletes only pods and pdbs", 2)
            _request(config, {"op": "delete", "kind": kind,
                              "key": "%s/%s" % (flags.get("-n", flags.get("--namespace", "default")), name)})
            print('%s "%s" deleted' % (kind, name))
            return True
        if verb == "label" and len(words) >= 3:
            kind, name = _kind_and_name(words[1:])
            rest = words[3:] if "/" not in words[1] else words[2:]
            if kind not in ("pod", "pods", "po"):
                die("the K3S STAND-IN labels only pods", 2)
            _request(config, {"op": "label", "key": "%s/%s" % (flags.get("-n", flags.get("--namespace", "default")), name),
                              "labels": _parse_selector(",".join(rest))})
            print("pod/%s labeled" % name)
            return True
        if verb == "annotate" and len(words) >= 3:
            kind, name = _kind_and_name(words[1:])
            rest = words[3:] if "/" not in words[1] else words[2:]
            if kind not in ("node", "nodes", "no"):
                die("the K3S STAND-IN annotates only nodes", 2)
            changes = {"op": "annotate", "name": name, "set": {}, "remove": []}
            for item in rest:
                if item.endswith("-") and "=" not in item:
                    changes["remove"].append(item[:-1])
                else:
                    key, _sep, value = item.partition("=")
                    changes["set"][key] = value
            _request(config, changes)
            print("node/%s annotated" % name)
            return True
        if verb == "drain" and len(words) >= 2:
            _drain(config, words[1], flags)
            return True
    except OSError as exc:
        die("The connection to the server was refused (%s)" % exc)
    return False


def etcd_snapshot(args):
    config = load_config()
    if "save" not in args:
        die("the K3S STAND-IN implements only: etcd-snapshot save [--name NAME]", 2)
    ddir = data_dir(config)
    if not os.path.isdir(os.path.join(ddir, "server", "db", "etcd")):
        die("etcd datastore disabled")
    name = "on-demand"
    if "--name" in args and args.index("--name") + 1 < len(args):
        name = args[args.index("--name") + 1]
    stamp = int(time.time())
    path = os.path.join(ddir, "server", "db", "snapshots", "%s-%s-%d" % (name, node_name(config), stamp))
    write_file(path, json.dumps({"standin": True, "version": VERSION, "time": time.time()}) + "\n", 0o600)
    print("Snapshot %s saved." % os.path.basename(path))


def main(argv):
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if prog == "kubectl":
        return kubectl(args)
    if not args or args[0] in ("--version", "-v", "version"):
        print("k3s version %s (stand-in)\ngo version stand-in" % VERSION)
        return None
    command, rest = args[0], args[1:]
    if command == "server":
        return run_server(load_config())
    if command == "agent":
        return run_agent(load_config())
    if command == "kubectl":
        return kubectl(rest)
    if command == "etcd-snapshot":
        return etcd_snapshot(rest)
    die("the K3S STAND-IN does not implement '%s'" % command, 2)
    return None


if __name__ == "__main__":
    main(sys.argv)
