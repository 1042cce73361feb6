"""Support code shared by the tests (no tests here): the repository's paths, test envs, config builders.

The test env modules are imported by name (``helpers.sampler_test_envs``) in the env worker processes the tests
spawn, so they live at module level in this package; ``tests/`` is on ``sys.path`` (tests/conftest.py) and a
spawned process inherits its parent's ``sys.path``.
"""

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent
