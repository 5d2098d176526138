# k3s_gpu.cluster: every target installs what it needs (scripts/bootstrap.sh).
# The two commands that matter: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help bootstrap demo test lint yamllint ansible-lint sanity unit integration molecule \
        lab lab-destroy images build changelog clean upstream peers test-real mutation bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

bootstrap: ## install the pinned toolchain and dependency collections (.venv, .collections)
	@scripts/bootstrap.sh

demo: bootstrap ## create the local Docker lab if absent and run site.yml against it
	@scripts/lab/lab.sh up
	@scripts/demo.sh

test: ## run every test, in order, stopping at the first failure
	@scripts/test.sh

lint: yamllint ansible-lint ## yamllint + ansible-lint (production profile)

yamllint: bootstrap
	@scripts/lint.sh yamllint

ansible-lint: bootstrap
	@scripts/lint.sh ansible-lint

sanity: bootstrap ## ansible-test sanity on a generated ansible_collections tree
	@scripts/sanity.sh

unit: bootstrap ## pytest unit tests (fails when none are collected)
	@scripts/unit.sh

integration: bootstrap ## ansible-test integration targets on localhost
	@scripts/integration.sh

molecule: bootstrap ## every molecule scenario that can run here
	@scripts/molecule.sh

mutation: ## mutation testing (mutmut) of _nvidia_smi, _cdi, _containerd; not in make test (scripts/mutation.sh)
	@scripts/mutation.sh

upstream: ## build the upstream peer programs from their pinned Go modules (tests/upstream)
	@scripts/upstream.sh

peers: bootstrap ## the upstream peers: CDI library, nvidia-ctk, containerd 1.7 and 2.x (scripts/peers.sh)
	@scripts/peers.sh

test-real: bootstrap ## opt-in: a REAL Kubernetes cluster (k3s-upstream, not K3s) in the lab (molecule k3s-real)
	@K3S_REAL=1 flock /tmp/k3s-gpu-molecule-k3s-real.lock scripts/molecule.sh k3s-real

bench: bootstrap ## time site.yml on the lab with 1, 2 and 4 nodes, first converge and no-change re-run (scripts/bench.sh)
	@scripts/bench.sh

images: ## build the lab base images (debootstrap + docker import), cached by tag
	@scripts/lab/images.sh

lab: bootstrap ## start the lab (one server, one agent) and write inventories/lab/hosts.yml
	@scripts/lab/lab.sh up

lab-destroy: ## remove the lab containers and inventories/lab
	@scripts/lab/lab.sh down

build: bootstrap ## build the collection tarball (ansible-galaxy collection build)
	@scripts/build.sh

changelog: bootstrap ## lint changelog fragments and render CHANGELOG.md
	@source scripts/lib.sh && activate_venv && antsibull-changelog lint && antsibull-changelog generate

clean: ## remove caches and build output (keeps .venv and lab images)
	rm -rf .build .pytest_cache tests/output k3s_gpu-cluster-*.tar.gz
