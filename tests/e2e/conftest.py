"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import pytest
from clients import Sandbox


@pytest.fixture
def sandbox(tmp_path):
    """A private HOME with its own config and cache dirs for the client tools."""
    return Sandbox(tmp_path / "sandbox")
