# -*- coding: utf-8 -*-
"""Fixtures shared by the add-on tests (test_addons_manifests.py, test_device_plugin_peer.py)."""

from __future__ import absolute_import, division, print_function

import pytest


@pytest.fixture(scope="session")
def rendered():
    """Every manifest of addons_render/render.yml, rendered once per test session."""
    from test_addons_manifests import render_cases
    return render_cases()
