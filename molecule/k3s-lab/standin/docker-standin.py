# -*- coding: utf-8 -*-
"""DOCKER STAND-IN for the k3s-lab-ha molecule scenario.  THIS IS NOT DOCKER.

No interpreter line here: prepare adds #!/usr/bin/python3 when it installs this file as
/usr/local/bin/docker on the node that runs K3s in docker mode.

Docker Engine cannot run inside the unprivileged lab containers, so this script mimics the
two things the K3s roles and the nvidia_container_toolkit role talk to, and nothing else:

* ``docker __standin-daemon`` is the ExecStart of the stand-in docker.service: like dockerd it
  reads /etc/docker/daemon.json only when it starts, refuses to start when
  ``default-runtime`` names a runtime it does not know, and then stays up;
* ``docker info --format FORMAT`` answers ``{{json .Runtimes}}`` and ``{{.DefaultRuntime}}``
  from what the running daemon loaded, so a daemon.json changed without a restart is not seen.

It proves that the roles write daemon.json, restart Docker and check the loaded runtimes. It
proves nothing about Docker, cri-dockerd or NVIDIA's runtime: no container runs.
"""

import json
import os
import signal
import sys
import time

DAEMON_JSON = "/etc/docker/daemon.json"
LOADED = "/run/docker-standin/loaded.json"


def die(message):
    sys.stderr.write("docker stand-in: %s\n" % message)
    sys.exit(1)


def daemon():
    settings = {}
    if os.path.exists(DAEMON_JSON):
        with open(DAEMON_JSON) as handle:
            try:
                settings = json.load(handle)
            except ValueError as exc:
                die("unable to configure the Docker daemon with file %s: %s" % (DAEMON_JSON, exc))
    runtimes = {"io.containerd.runc.v2": {"path": "runc"}, "runc": {"path": "runc"}}
    runtimes.update(settings.get("runtimes") or {})
    default = settings.get("default-runtime") or "runc"
    if default not in runtimes:
        die("default runtime %s does not exist" % default)
    os.makedirs(os.path.dirname(LOADED), exist_ok=True)
    with open(LOADED, "w") as handle:
        json.dump({"Runtimes": runtimes, "DefaultRuntime": default}, handle)

    def stop(_signum, _frame):
        os.unlink(LOADED)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        time.sleep(3600)


def info(fmt):
    if not os.path.exists(LOADED):
        die("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
    with open(LOADED) as handle:
        loaded = json.load(handle)
    out = fmt.replace("{{json .Runtimes}}", json.dumps(loaded["Runtimes"], sort_keys=True))
    out = out.replace("{{.DefaultRuntime}}", loaded["DefaultRuntime"])
    if "{{" in out:
        die("this stand-in answers only {{json .Runtimes}} and {{.DefaultRuntime}}, not %r" % fmt)
    print(out)


def main(argv):
    if argv[:1] == ["__standin-daemon"]:
        daemon()
    elif argv[:2] == ["info", "--format"] and len(argv) == 3:
        info(argv[2])
    else:
        die("not supported by the stand-in: docker %s" % " ".join(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
