"""Conformance of every installed implementation, each checked in its own child process.

The checks themselves are in impl_checks.py; here the main process (which
imports no framework) runs them once per registry entry and reports the
child's output when they fail.
"""

from __future__ import annotations

import pytest

from bench import registry
from tests.impls.children import OWN_START, Children, installed_names


def test_every_framework_installed_here_is_checked() -> None:
    # CI installs every extra: an implementation silently skipped would hide a failure.
    missing = {n: e.missing() for n, e in registry.REGISTRY.items() if not e.installed()}
    # OWN_START (keras-reference*) is checked by test_keras_reference.py instead.
    assert set(installed_names()) | set(missing) | set(OWN_START) == set(registry.REGISTRY)
    assert all(missing.values())


@pytest.mark.parametrize("name", installed_names())
def test_conformance(name: str, children: Children) -> None:
    result = children.result(name)
    if result.returncode != 0:
        pytest.fail(f"{name} checks failed (exit {result.returncode}):\n{result.tail()}")
    # The parity dump ran too (it is skipped only without DEEPREC_PARITY_OUT).
    assert result.parity_file.exists(), result.tail()
