"""Fixtures of the implementation tests: the per-implementation child processes."""

from __future__ import annotations

import pytest

from tests.impls.children import Children, installed_names


@pytest.fixture(scope="session")
def children() -> Children:
    """Every installed implementation's checks, each in its own child process (run once)."""
    return Children(installed_names())
