"""Shared fixtures of the test suite.

``tests/`` is put on ``sys.path`` here, once: the test env modules (``sampler_test_envs``,
``validation_test_envs``, ...) are imported from it by tests in every sub-folder, and by the env worker
processes those tests spawn (a spawned process inherits the parent's ``sys.path``).
"""

from __future__ import annotations

import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)


@pytest.fixture
def fresh_context():
    """An empty Sample Factory context (registered envs, model factories) before and after the test."""
    from pysf.algo.utils.context import reset_global_context

    reset_global_context()
    yield
    reset_global_context()
