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
  answer from that registry; ``k3s etcd-snapshot save`` writes a snapshot marker.

It proves that the roles wire files, tokens, services and joins together
correctly.  It proves nothing about K3s itself: no Kubernetes API, no kubelet,
no containerd, no pods, no CNI, no etcd.
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
            "runtime": "docker://stand-in" if config.get("docker") else "containerd://stand-in"}


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
                     "annotations": {"k3s-standin": "this node is served by the K3S STAND-IN, not K3s"}},
        "spec": {"taints": node["taints"], "unschedulable": node.get("unschedulable", False)},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "nodeInfo": {"kubeletVersion": node["version"], "containerRuntimeVersion": node["runtime"]}},
    }


def kubectl(args):
    config = load_config()
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
    die("the K3S STAND-IN implements only: kubectl get node(s) [NAME] -o json, cordon, uncordon, drain", 2)


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
