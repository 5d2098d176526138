# -*- coding: utf-8 -*-
"""One owner for the GPUs' CDI devices: conflicts between spec files (_cdi_owner, the
gpu_cdi_conflicts filter the toolkit role uses) and what diagnose says about them."""
from __future__ import absolute_import, division, print_function

import json

from ansible_collections.k3s_gpu.cluster.plugins.filter.cdi_owner import FilterModule
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi_owner
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _diagnose as d

OURS = """cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
- name: GPU-89fcfae2
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
- name: all
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
containerEdits:
  mounts:
  - hostPath: /usr/lib/x86_64-linux-gnu/libcuda.so.535.900.02
    containerPath: /usr/local/nvidia/lib64/libcuda.so.1
"""
# What nvidia-ctk writes by default: index names and "all", the same kind.
TOOLKIT = json.dumps({"cdiVersion": "0.7.0", "kind": "nvidia.com/gpu", "devices": [
    {"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}},
    {"name": "all", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}}]})
OTHER_KIND = TOOLKIT.replace("nvidia.com/gpu", "example.com/fpga")


def conflicts(specs, own):
    return FilterModule().filters()["gpu_cdi_conflicts"](specs, own)


def test_no_conflict_alone_or_with_another_kind():
    assert conflicts({"/etc/cdi/nvidia.yaml": OURS}, "/etc/cdi/nvidia.yaml") == []
    assert conflicts({"/etc/cdi/nvidia.yaml": OURS, "/var/run/cdi/fpga.json": OTHER_KIND}, "/etc/cdi/nvidia.yaml") == []
    assert d.detect_duplicate_cdi_devices({"/etc/cdi/nvidia.yaml": OURS, "/var/run/cdi/fpga.json": OTHER_KIND}) == []


def test_the_toolkit_spec_conflicts_and_is_marked():
    found = conflicts({"/etc/cdi/nvidia.yaml": OURS, "/var/run/cdi/nvidia.yaml": TOOLKIT}, "/etc/cdi/nvidia.yaml")
    assert found == [{"path": "/var/run/cdi/nvidia.yaml", "devices": ["nvidia.com/gpu=0", "nvidia.com/gpu=all"],
                      "toolkit": True}]
    # /run is /var/run on most hosts: the same file under either name.
    found = conflicts({"/etc/cdi/nvidia.yaml": OURS, "/run/cdi/nvidia.yaml": TOOLKIT}, "/etc/cdi/nvidia.yaml")
    assert [f["toolkit"] for f in found] == [True]


def test_another_file_of_ours_is_not_the_toolkit():
    found = conflicts({"/etc/cdi/nvidia.yaml": OURS, "/etc/cdi/nvidia-old.yaml": OURS}, "/etc/cdi/nvidia.yaml")
    assert found == [{"path": "/etc/cdi/nvidia-old.yaml", "toolkit": False,
                      "devices": ["nvidia.com/gpu=0", "nvidia.com/gpu=GPU-89fcfae2", "nvidia.com/gpu=all"]}]


def test_unreadable_specs_define_nothing():
    assert _cdi_owner.spec_devices("a: [unclosed") == []
    assert _cdi_owner.spec_devices("just text") == []
    assert conflicts({"/etc/cdi/nvidia.yaml": "a: [", "/var/run/cdi/nvidia.yaml": TOOLKIT}, "/etc/cdi/nvidia.yaml") == []


def test_diagnose_reports_duplicates_with_the_owner_fix():
    found = d.detect_duplicate_cdi_devices({"/etc/cdi/nvidia.yaml": OURS, "/var/run/cdi/nvidia.yaml": TOOLKIT})
    assert [f["id"] for f in found] == ["duplicate_cdi_devices"]
    assert "/etc/cdi/nvidia.yaml and /var/run/cdi/nvidia.yaml define nvidia.com/gpu=0, nvidia.com/gpu=all" in \
        found[0]["cause"]
    assert "nvidia-cdi-refresh units are kept off" in found[0]["fix"]
    assert found[0]["evidence"] == ["nvidia.com/gpu=0: /etc/cdi/nvidia.yaml, /var/run/cdi/nvidia.yaml",
                                    "nvidia.com/gpu=all: /etc/cdi/nvidia.yaml, /var/run/cdi/nvidia.yaml"]
    ids = [f["id"] for f in d.run_all({"cdi_specs": {"/etc/cdi/a.yaml": OURS, "/etc/cdi/b.yaml": OURS}})]
    assert ids == ["duplicate_cdi_devices"]


def test_stale_fix_names_the_unit_that_owns_the_spec():
    stale = OURS.replace("535.900.02", "535.900.01")
    specs = {"/etc/cdi/nvidia.yaml": stale}
    config = json.dumps({"path": "/etc/cdi/nvidia.yaml", "backend": "native"})
    # The collection's self-heal keeps it: the fix is to start that unit.
    found = d.run_all({"driver_version": "535.900.02", "cdi_specs": specs, "cdi_refresh_config": config})
    assert [f["id"] for f in found] == ["stale_cdi_spec"]
    assert "`systemctl start k3s-gpu-cdi-refresh.service`" in found[0]["fix"]
    assert "journalctl -u k3s-gpu-cdi-refresh.service" in found[0]["fix"]
    # No self-heal installed (or an unreadable options file): nvidia-ctk.
    for cfg in ("", "not json"):
        found = d.run_all({"driver_version": "535.900.02", "cdi_specs": specs, "cdi_refresh_config": cfg})
        assert "`nvidia-ctk cdi generate --output /etc/cdi/nvidia.yaml`" in found[0]["fix"]
    # The toolkit's spec, on a node with its refresh units.
    found = d.detect_stale_cdi("535.900.02", {"/var/run/cdi/nvidia.yaml": stale}, "/etc/cdi/nvidia.yaml", True)
    assert "`systemctl restart nvidia-cdi-refresh.service`" in found[0]["fix"]
