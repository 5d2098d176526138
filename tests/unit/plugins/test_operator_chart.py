# -*- coding: utf-8 -*-
"""The GPU Operator image paths the gpu_operator role sets for a mirror
(``_gpu_values.OPERATOR_IMAGE_PATHS``) against the chart of the pinned version.

The chart's ``deployments/gpu-operator/values.yaml`` is read from the Go module cache when
github.com/NVIDIA/gpu-operator at the pinned version is there (it is not committed). The Go
module proxy refused that version when it was tried (docs/addons.md), so normally the test
falls back to our facts table, addons_data/gpu-operator-images.yml (names and paths only,
read by hand from the chart of that tag): then it proves that the code and the table agree,
not that the table still matches the chart.
"""

from __future__ import absolute_import, division, print_function

import os
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_values

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FACTS = os.path.join(HERE, "addons_data", "gpu-operator-images.yml")
MODULE = os.path.join("github.com", "!n!v!i!d!i!a")


def _pinned_version():
    with open(os.path.join(REPO_ROOT, "roles", "gpu_operator", "defaults", "main.yml")) as handle:
        return yaml.safe_load(handle)["gpu_operator_chart_version"]


def _module_cache():
    if os.environ.get("GOMODCACHE"):
        return os.environ["GOMODCACHE"]
    if shutil.which("go"):
        out = subprocess.run(["go", "env", "GOMODCACHE"], stdout=subprocess.PIPE, universal_newlines=True,
                             check=False).stdout.strip()
        if out:
            return out
    return os.path.join(os.path.expanduser("~"), "go", "pkg", "mod")


def chart_values(version):
    """(path, values) of the chart's values.yaml in the Go module cache, or (None, None)."""
    cache = _module_cache()
    for folder in ("gpu-operator@%s" % version, "gpu-operator@%s+incompatible" % version,
                   os.path.join("gpu-operator", "v%s@%s" % (version.lstrip("v").split(".")[0], version))):
        path = os.path.join(cache, MODULE, folder, "deployments", "gpu-operator", "values.yaml")
        if os.path.isfile(path):
            with open(path) as handle:
                return path, yaml.safe_load(handle)
    return None, None


def images_of(values, prefix=()):
    """component (dotted) -> {repository, image} for every table of values that names an image."""
    found = {}
    if isinstance(values, dict):
        if "repository" in values and "image" in values:
            found[".".join(prefix)] = {"repository": values["repository"] or "", "image": values["image"]}
        for key, value in values.items():
            found.update(images_of(value, prefix + (key,)))
    return found


@pytest.fixture(scope="module")
def chart():
    """(source, images) for the pinned chart version: the chart itself when cached, else our facts."""
    with open(FACTS) as handle:
        facts = yaml.safe_load(handle)
    version = _pinned_version()
    assert facts["chart_version"] == version, (
        "addons_data/gpu-operator-images.yml describes chart %s, but the role pins %s: read the image paths of "
        "the new chart's values.yaml into the table" % (facts["chart_version"], version))
    path, values = chart_values(version)
    if values is None:
        return "facts table %s (chart %s not in the Go module cache)" % (FACTS, version), facts["images"]
    images = images_of(values)
    # nfd's subchart and the like pull from elsewhere; only nvcr.io and empty repositories are ours to map.
    images = dict((k, v) for k, v in images.items() if v["repository"].startswith("nvcr.io/") or not v["repository"])
    assert images == facts["images"], "the facts table disagrees with %s" % path
    return "chart values %s" % path, images


def test_every_nvcr_component_has_the_charts_path(chart):
    source, images = chart
    expected = dict((name, item["repository"][len("nvcr.io/"):]) for name, item in images.items()
                    if item["repository"].startswith("nvcr.io/"))
    assert _gpu_values.OPERATOR_IMAGE_PATHS == expected, "OPERATOR_IMAGE_PATHS differs from %s" % source


def test_component_without_a_public_image_is_left_alone(chart):
    _source, images = chart
    private = sorted(name for name, item in images.items() if not item["repository"])
    assert private == ["vgpuManager"]
    values = _gpu_values.operator_values({"image_registry": "mirror.example:5000"}, [])["values"]
    assert "repository" not in values.get("vgpuManager", {})


def test_mirror_keeps_the_image_names_and_paths(chart):
    source, images = chart
    values = _gpu_values.operator_values({"image_registry": "mirror.example:5000"}, [])["values"]
    for name, item in sorted(images.items()):
        if not item["repository"]:
            continue
        node = values
        for part in name.split("."):
            node = node[part]
        assert node["repository"] == item["repository"].replace("nvcr.io", "mirror.example:5000", 1), (name, source)
        assert "image" not in node, "%s: the chart's image name %s must stay" % (name, item["image"])
