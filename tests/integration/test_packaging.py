"""Packaging: the torch-version guard, and a wheel that installs and runs in a fresh venv."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch

from helpers import REPO_ROOT
import pysf


def test_check_torch_version_accepts_local_build_tags():
    pysf.check_torch_version("2.13.0+cpu", "2.13.0")
    pysf.check_torch_version("2.13.0", "2.13.0+cu128")


def test_check_torch_version_rejects_other_versions():
    with pytest.raises(ImportError) as info:
        pysf.check_torch_version("2.13.0+cpu", "2.14.1+cu130")
    message = str(info.value)
    assert "compiled against torch 2.13.0+cpu" in message and "torch 2.14.1+cu130 is installed" in message
    assert "pip install torch==2.13.0" in message


def test_import_fails_clearly_under_a_different_recorded_torch(tmp_path):
    """Simulate a build made for another torch by faking the recorded build version."""
    script = textwrap.dedent(
        """
        import sys, types
        fake = types.ModuleType("pysf._build_info")
        fake.TORCH_VERSION = "2.12.1+cpu"
        sys.modules["pysf._build_info"] = fake
        try:
            import pysf
        except ImportError as exc:
            print("IMPORT-ERROR:", exc)
            sys.exit(0)
        print("imported")
        sys.exit(1)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"compiled against torch 2.12.1+cpu but torch {torch.__version__} is installed" in result.stdout
    assert "pip install torch==2.12.1" in result.stdout


def test_recorded_build_version_matches_the_pin():
    pin = next(line for line in (REPO_ROOT / "pyproject.toml").read_text().splitlines() if line.startswith("dependencies"))
    assert "torch==2.13.0" in pin
    assert pysf._build_info.TORCH_VERSION.split("+")[0] == "2.13.0" == torch.__version__.split("+")[0]


@pytest.mark.slow
def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    """pip wheel -> fresh venv -> pip install the wheel (pulls torch==2.13.0) -> import and run the demo.

    The wheel is built in the extension's build dir (pyproject.toml's build-dir), so its objects are reused;
    the C++ tests that dir also defines are not in it.
    """
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", str(dist), str(REPO_ROOT)],
        check=True,
        timeout=900,
    )
    wheels = list(dist.glob("pysf-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.startswith("pysf/_C.") and n.endswith(".so") for n in names), names
    assert "pysf/_build_info.py" in names
    assert "Requires-Dist: torch==2.13.0" in metadata
    strays = [n for n in names if not (n.startswith("pysf/") or n.split("/")[0].endswith(".dist-info")) or "/test_" in n]
    assert not strays, f"the wheel holds more than the package: {strays}"

    venv = tmp_path / "venv"
    # No pip of its own (bootstrapping one costs seconds): this interpreter's pip installs into it (pip --python).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(
        # --no-compile: byte-compiling all of torch would take longer than the rest of the test
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--disable-pip-version-check",
         "--no-compile", str(wheels[0])],
        check=True,
        timeout=900,
        env=env,
    )
    # Run from an unrelated directory so the source tree cannot be imported by accident.
    demo = "import sys, pysf, pysf.demo; print('pysf from', pysf.__file__); sys.exit(pysf.demo.main(sys.argv[1:]))"
    result = subprocess.run(
        [str(python), "-c", demo, "--iterations", "3", "--batch_sizes", "1", "16"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"pysf from {venv}" in result.stdout
    assert "compiled with TorchScript and verified" in result.stdout
    assert "published new weights as policy version 1" in result.stdout
