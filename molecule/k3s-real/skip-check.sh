#!/usr/bin/env bash
# Called by scripts/molecule.sh before the scenario runs: k3s-real is opt-in. It builds
# Kubernetes, containerd and etcd from their Go modules (10-40 minutes on 2 cores the first
# time) and runs a real control plane, which does not fit make test's budget. `make test-real`
# sets K3S_REAL=1 and runs it.
if [ "${K3S_REAL:-0}" = 1 ]; then
  exit 1
fi
echo "opt-in: a real Kubernetes cluster built from source (run 'make test-real')"
exit 0
