#!/usr/bin/env bash
# The whole test suite: the Python tests (pytest, tests/) and the standalone C++ tests (tests/cpp).
# Expects the venv and build from scripts/setup_env.sh (`make test` runs both). Extra arguments go to pytest.
# The plain C++ tests reuse the extension's compiled core; they also run under AddressSanitizer and
# ThreadSanitizer, each a build of its own (12-18 s of ctest when built; about 4 CPU-minutes of compiling each with
# a cold compiler cache, 2.2-2.5 min on 2 cores); PYSF_SKIP_SANITIZERS=1 skips those two runs for a quicker local check.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PYSF_VENV:-$ROOT/.venv}
cd "$ROOT"

# One pytest process per core (pytest-xdist; PYSF_TEST_PROCESSES overrides, 0 runs them all in this process):
# most tests wait on child processes that import torch, so two cores take ~1.4x less time than one.
"$VENV/bin/python" -m pytest -n "${PYSF_TEST_PROCESSES:-auto}" --dist worksteal "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "[pysf tests] pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi

bash "$ROOT/scripts/cpp_tests.sh" || exit $?
if [ -z "${PYSF_SKIP_SANITIZERS:-}" ]; then
  bash "$ROOT/scripts/cpp_tests.sh" address || exit $?
  bash "$ROOT/scripts/cpp_tests.sh" thread || exit $?
fi
