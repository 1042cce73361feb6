"""Sample Factory 2.1.1's own example scripts, run with ``sample_factory`` renamed to ``pysf``.

The scripts come from the ``sample-factory==2.1.1`` wheel (downloaded from the package registry once and cached
in ``$PYSF_TEST_CACHE``, default ``~/.cache/pysf-tests``; the tests skip when it cannot be had). They are
extracted into the test's temporary folder with the import renamed, and run exactly as written otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SF_WHEEL_SPEC = "sample-factory==2.1.1"


def _sample_factory_wheel() -> Path:
    cache = Path(os.environ.get("PYSF_TEST_CACHE", Path.home() / ".cache" / "pysf-tests"))
    found = sorted(cache.glob("sample_factory-2.1.1-*.whl"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", SF_WHEEL_SPEC, "-d", str(cache), "-q"],
                       check=True, capture_output=True, timeout=180)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"cannot download {SF_WHEEL_SPEC} ({exc})")
    found = sorted(cache.glob("sample_factory-2.1.1-*.whl"))
    if not found:
        pytest.skip(f"pip download {SF_WHEEL_SPEC} left no wheel in {cache}")
    return found[0]


@pytest.fixture(scope="module")
def sf_examples(tmp_path_factory) -> Path:
    """A folder holding Sample Factory's ``sf_examples`` package (its data files too), ``sample_factory`` renamed to
    ``pysf`` in the code."""
    root = tmp_path_factory.mktemp("sf_examples")
    with zipfile.ZipFile(_sample_factory_wheel()) as wheel:
        for name in wheel.namelist():
            if name.startswith("sf_examples/") and not name.endswith("/"):
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if name.endswith(".py"):
                    target.write_text(wheel.read(name).decode("utf-8").replace("sample_factory", "pysf"))
                else:  # data: VizDoom's scenarios
                    target.write_bytes(wheel.read(name))
    return root


def _run_example(sf_examples: Path, module: str, *flags: str, timeout: float = 300, returncode: int = 0) -> str:
    result = subprocess.run([sys.executable, "-m", module, *flags], cwd=sf_examples, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert result.returncode == returncode, result.stdout[-4000:]
    return result.stdout


@pytest.mark.slow
def test_the_multi_agent_example_trains_and_enjoys(sf_examples, tmp_path):
    """``train_custom_multi_env``: a 2-agent env with inactive agents and per-agent reward shaping; then
    ``enjoy_custom_multi_env`` evaluates both agents."""
    output = _run_example(
        sf_examples, "sf_examples.train_custom_multi_env", "--env=my_custom_multi_env_v1", "--experiment=example_multi",
        f"--train_dir={tmp_path}", "--train_for_env_steps=8000", "--num_workers=2", "--num_envs_per_worker=2",
        "--device=cpu", "--save_every_sec=5", "--experiment_summaries_interval=10",
    )
    assert "Result:" in output and "Avg episode reward" in output, output[-3000:]
    assert list((tmp_path / "example_multi" / "checkpoint_p0").glob("checkpoint_*.pth"))
    # The script returns enjoy's (status, reward) tuple to sys.exit, which prints it and exits with 1.
    output = _run_example(
        sf_examples, "sf_examples.enjoy_custom_multi_env", "--env=my_custom_multi_env_v1", "--experiment=example_multi",
        f"--train_dir={tmp_path}", "--no_render", "--max_num_episodes=4", "--device=cpu", returncode=1,
    )
    assert "Avg episode rewards: #0: " in output and ", #1: " in output, output[-3000:]
    assert output.rstrip().splitlines()[-1].startswith("(0, "), output[-3000:]


def test_the_vizdoom_example_trains_doom_basic(sf_examples, tmp_path):
    """``vizdoom/train_vizdoom``: Sample Factory's own Doom env stack (its scenarios, wrappers and encoder)."""
    pytest.importorskip("vizdoom")
    output = _run_example(
        sf_examples, "sf_examples.vizdoom.train_vizdoom", "--env=doom_basic", "--experiment=doom",
        f"--train_dir={tmp_path}", "--train_for_env_steps=4096", "--num_workers=1", "--num_envs_per_worker=4",
        "--batch_size=256", "--device=cpu",
    )
    assert "Result:" in output and "Doom resolution: 160x120, resize resolution: (128, 72)" in output, output[-3000:]
    assert list((tmp_path / "doom" / "checkpoint_p0").glob("checkpoint_*.pth"))


@pytest.mark.parametrize("module, flags", [
    ("sf_examples.envpool.mujoco.train_envpool_mujoco", ["--env=mujoco_halfcheetah", "--envpool_num_threads=1"]),
    ("sf_examples.envpool.atari.train_envpool_atari", ["--env=atari_pong"]),
])
def test_the_envpool_examples_train(sf_examples, tmp_path, module, flags):
    """``envpool/*/train_envpool_*``: Sample Factory's EnvPool envs (one EnvPool of --env_agents envs per worker,
    batched sampling), wrapped in its own reset fix."""
    pytest.importorskip("envpool")
    output = _run_example(
        sf_examples, module, *flags, "--experiment=envpool", f"--train_dir={tmp_path}", "--train_for_env_steps=8192",
        "--num_workers=1", "--env_agents=8", "--device=cpu", "--batch_size=1024", "--rollout=64",
    )
    assert "Result:" in output and "batched_sampling=True" in output, output[-3000:]
    assert list((tmp_path / "envpool" / "checkpoint_p0").glob("checkpoint_*.pth"))
