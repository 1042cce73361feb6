"""pysf.launcher.run_processes: the local back-end, driven with a tiny probe script instead of training runs
(each experiment records when it ran, its CUDA_VISIBLE_DEVICES, interpreter and environment)."""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List

import pytest

from pysf.launcher.run import launcher_argparser
from pysf.launcher.run_description import Experiment, ParamGrid, RunDescription
from pysf.launcher.run_processes import run

from helpers import REPO_ROOT

PROBE = textwrap.dedent(
    """
    import json, os, signal, sys, time
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    record_file = os.path.join(args["train_dir"], args["experiment"] + ".json")
    record = {"start": time.time(), "pid": os.getpid(), "argv": sys.argv[1:], "exe": sys.executable,
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
              "marker": os.environ.get("PYSF_TEST_MARKER")}
    def write():
        with open(record_file + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(record_file + ".tmp", record_file)
    if args.get("wait_for_sigint"):
        def on_sigint(signum, frame):
            record["interrupted"] = True
            write()
            sys.exit(2)
        signal.signal(signal.SIGINT, on_sigint)
        write()
        time.sleep(60)
        sys.exit(0)
    time.sleep(float(args.get("sleep", 0)))
    record["end"] = time.time()
    write()
    sys.exit(int(args.get("code", 0)))
    """
)


@pytest.fixture
def probe_cmd(tmp_path: Path) -> str:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    return f"python {shlex.quote(str(probe))}"


def _args(train_dir: Path, *flags: str):
    argv = [f"--train_dir={train_dir}", "--pause_between=0", *flags]
    return launcher_argparser(argv).parse_args(argv)


def _records(train_dir: Path) -> Dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in train_dir.rglob("*.json")}


def _max_overlap(records: List[dict]) -> int:
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records], key=lambda e: (e[0], e[1]))
    running = best = 0
    for _, delta in events:
        running += delta
        best = max(best, running)
    return best


def test_all_experiments_succeed_in_their_folders(tmp_path, probe_cmd, caplog):
    params = ParamGrid([("seed", [1, 2, 3])])
    rd = RunDescription("run", [Experiment("probe", probe_cmd, params.generate_params(), env_vars={"PYSF_TEST_MARKER": 7})])
    with caplog.at_level(logging.INFO):
        status = run(rd, _args(tmp_path / "td", "--max_parallel=2"))
    assert status == 0
    records = _records(tmp_path / "td")
    assert sorted(records) == ["00_probe_see_1", "01_probe_see_2", "02_probe_see_3"]
    for name, record in records.items():
        assert record["argv"][-2:] == [f"--experiment={name}", f"--train_dir={tmp_path / 'td'}/run/probe_"]
        assert record["exe"] == sys.executable  # "python" runs the launcher's interpreter
        assert record["marker"] == "7"
    assert (tmp_path / "td" / "run" / "probe_" / "00_probe_see_1.json").is_file()
    assert "Starting experiment 1/3 00_probe_see_1" in caplog.text
    assert "Experiment 02_probe_see_3 finished (exit code 0)" in caplog.text
    assert "3 experiment(s): 3 succeeded, 0 failed" in caplog.text


def test_a_failed_experiment_makes_the_status_non_zero_and_is_named(tmp_path, probe_cmd, caplog):
    params = ParamGrid([("code", [0, 3, 0])])
    rd = RunDescription("run", [Experiment("probe", probe_cmd, params.generate_params())])
    with caplog.at_level(logging.INFO):
        status = run(rd, _args(tmp_path, "--max_parallel=3"))
    assert status == 1
    assert len(_records(tmp_path)) == 3  # the others still ran to the end
    assert "Experiment 01_probe_cod_3 FAILED: exit code 3" in caplog.text
    assert "3 experiment(s): 2 succeeded, 1 failed. Failed: run/probe_/01_probe_cod_3 (exit code 3)" in caplog.text


def test_max_parallel_and_pause_between(tmp_path, probe_cmd):
    params = ParamGrid([("seed", [1, 2, 3, 4]), ("sleep", [0.3])])
    rd = RunDescription("run", [Experiment("probe", probe_cmd, params.generate_params())])
    assert run(rd, _args(tmp_path / "a", "--max_parallel=1")) == 0
    records = list(_records(tmp_path / "a").values())
    assert len(records) == 4 and _max_overlap(records) == 1

    assert run(rd, _args(tmp_path / "b", "--max_parallel=4")) == 0
    assert _max_overlap(list(_records(tmp_path / "b").values())) >= 2  # they do run side by side

    argv = [f"--train_dir={tmp_path / 'c'}", "--pause_between=1", "--max_parallel=4"]
    rd = RunDescription("run", [Experiment("probe", probe_cmd, [{"seed": 1}, {"seed": 2}])])
    assert run(rd, launcher_argparser(argv).parse_args(argv)) == 0
    starts = sorted(r["start"] for r in _records(tmp_path / "c").values())
    assert starts[1] - starts[0] >= 0.7  # 1 s apart, less the difference of their interpreter start-ups


def test_experiments_per_gpu_assigns_cuda_visible_devices(tmp_path, probe_cmd, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    params = ParamGrid([("seed", [1, 2, 3, 4, 5, 6]), ("sleep", [0.3])])
    rd = RunDescription("run", [Experiment("probe", probe_cmd, params.generate_params())])
    assert run(rd, _args(tmp_path / "a", "--max_parallel=8", "--experiments_per_gpu=1", "--num_gpus=2")) == 0
    records = list(_records(tmp_path / "a").values())
    assert {r["cuda_visible_devices"] for r in records} == {"0", "1"}
    for gpu in ("0", "1"):  # one experiment per GPU at a time
        assert _max_overlap([r for r in records if r["cuda_visible_devices"] == gpu]) == 1
    assert _max_overlap(records) == 2

    # GPU i is the i-th device the launcher itself may use
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,6")
    assert run(rd, _args(tmp_path / "b", "--experiments_per_gpu=2", "--num_gpus=2")) == 0
    assert {r["cuda_visible_devices"] for r in _records(tmp_path / "b").values()} == {"5", "6"}

    # by default (-1) CUDA_VISIBLE_DEVICES is left alone
    assert run(rd, _args(tmp_path / "c")) == 0
    assert {r["cuda_visible_devices"] for r in _records(tmp_path / "c").values()} == {"5,6"}

    with pytest.raises(ValueError, match="lists 2 device"):
        run(rd, _args(tmp_path / "d", "--experiments_per_gpu=1", "--num_gpus=3"))


@pytest.mark.parametrize(
    "flags, match",
    [
        (["--max_parallel=0"], "--max_parallel must be at least 1"),
        (["--experiments_per_gpu=2", "--num_gpus=0"], "--num_gpus must be"),
    ],
)
def test_inconsistent_flags_are_rejected_before_anything_starts(tmp_path, probe_cmd, flags, match):
    rd = RunDescription("run", [Experiment("probe", probe_cmd)])
    with pytest.raises(ValueError, match=match):
        run(rd, _args(tmp_path, *flags))
    assert _records(tmp_path) == {}


def test_a_command_that_cannot_start_is_a_failure(tmp_path, caplog):
    rd = RunDescription("run", [Experiment("missing", "/nonexistent/binary --x=1")])
    with caplog.at_level(logging.ERROR):
        assert run(rd, _args(tmp_path)) == 1
    assert "Could not start experiment 00_missing" in caplog.text
    assert "run/missing_/00_missing (did not start)" in caplog.text


def test_ctrl_c_interrupts_running_experiments_and_starts_no_more(tmp_path, probe_cmd):
    (tmp_path / "interrupt_sweep.py").write_text(
        "from pysf.launcher.run_description import Experiment, ParamGrid, RunDescription\n"
        f"_cmd = {probe_cmd + ' --wait_for_sigint=1'!r}\n"
        "RUN_DESCRIPTION = RunDescription('sweep', [Experiment('probe', _cmd, ParamGrid([('seed', [1, 2, 3])]).generate_params())])\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    train_dir = tmp_path / "td"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "pysf.launcher.run", "--run=interrupt_sweep", f"--train_dir={train_dir}",
         "--pause_between=0", "--max_parallel=2"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # Ctrl-C's default action even when the tests run as a script's background job (which ignores SIGINT,
        # and an ignored signal stays ignored in children).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 60
        while len(_records(train_dir)) < 2 and time.time() < deadline and launcher.poll() is None:
            time.sleep(0.1)
        assert len(_records(train_dir)) == 2, "the two experiments did not start"
        launcher.send_signal(signal.SIGINT)  # only the launcher: children run in their own process groups
        output, _ = launcher.communicate(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 2, output
    records = _records(train_dir)
    assert sorted(records) == ["00_probe_see_1", "01_probe_see_2"]  # the third was never started
    assert all(r.get("interrupted") for r in records.values()), output  # each got the forwarded SIGINT
    for r in records.values():
        with pytest.raises(ProcessLookupError):
            os.kill(r["pid"], 0)
    assert "Not starting the 1 remaining experiment(s)" in output
    assert "3 experiment(s): 0 succeeded, 0 failed, 2 interrupted, 1 not started" in output
    assert "Experiment 00_probe_see_1 stopped: exit code 2" in output
