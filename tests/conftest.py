"""Shared fixtures of the test suite, and the import paths every test relies on.

The tests mirror the package (``tests/algo/sampling`` tests ``pysf/algo/sampling``, ...); end-to-end suites live in
``tests/integration``, the benchmark scripts' tests in ``tests/benchmarks``. Two paths go on ``sys.path`` here,
once:

- ``tests/``, for ``helpers`` (test envs, config builders): the env worker processes the tests spawn import the
  test envs by name, and a spawned process inherits its parent's ``sys.path``;
- the repository root, for the ``benchmarks`` package (``python -m benchmarks.compare``).

Test file names are unique across folders: pytest imports each as a top-level module named after its file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))
if str(TESTS_DIR.parent) not in sys.path:
    sys.path.append(str(TESTS_DIR.parent))


@pytest.fixture
def fresh_context():
    """An empty Sample Factory context (registered envs, model factories) before and after the test."""
    from pysf.algo.utils.context import reset_global_context

    reset_global_context()
    yield
    reset_global_context()
