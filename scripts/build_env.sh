# Sourced by scripts/setup_env.sh and scripts/cpp_tests.sh (which set ROOT and VENV): the build environment.
# The venv's tools come first on PATH: its ccache (pinned in requirements-dev.txt) is the one CMake finds.
export PATH="$VENV/bin:$PATH"
# ccache hits across build dirs and fresh clones: paths taken relative to the checkout, the build dir not hashed.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1 CCACHE_SLOPPINESS=pch_defines,time_macros
