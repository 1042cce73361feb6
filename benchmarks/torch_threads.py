"""The training process's PyTorch threads (``--torch_threads``): end-to-end frames/s per setting, alternating.

    .venv/bin/python -m benchmarks.torch_threads [--rounds 2] [--threads 1 2] [--workloads doom_basic pong cartpole]

Each round runs every workload once per thread count, in turn (so that the machine's load drifts over all of
them alike), as a fresh training process, and reads the end-to-end figure pysf prints (``Result: ... (N env
frames/s)``). Workloads whose suite is not installed are reported as skipped. Writes the table to
benchmarks/RESULTS.md (section "torch_threads").
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from benchmarks.report import machine_description, machine_line, markdown_table, print_table, update_results_section

ROOT = Path(__file__).resolve().parents[1]
RESULT_FPS = re.compile(r"Result: [\d,]+ env steps in [\d.]+ s \((\d+) env frames/s\)")

# name -> (module the suite needs, command after the interpreter, what it is)
WORKLOADS: Dict[str, tuple] = {
    "doom_basic": ("vizdoom", ["examples/train_vizdoom.py", "--env", "doom_basic", "--num_workers", "2",
                               "--num_envs_per_worker", "16", "--train_for_env_steps", "81920"],
                   "VizDoom basic, Sample Factory's Doom settings (convnet_simple + GRU on 3x72x128), 2 workers x 16 envs"),
    "pong": ("ale_py", ["examples/train_atari.py", "--env", "atari_pong", "--atari_vector_envs", "8", "--num_workers",
                        "1", "--train_for_env_steps", "49152"],
             "Atari Pong, Sample Factory's Atari settings (convnet_atari on 4x84x84), AtariVectorEnv of 8 games"),
    "cartpole": (None, ["-m", "pysf.train", "--env", "CartPole-v1", "--train_for_env_steps", "500000"],
                 "CartPole-v1 on the native engine, pysf's defaults (MLP)"),
}


def run_once(workload: str, threads: int, train_dir: str) -> Optional[float]:
    _, args, _ = WORKLOADS[workload]
    command = [sys.executable, *args, "--experiment", f"{workload}_t{threads}", "--train_dir", train_dir,
               "--restart_behavior", "overwrite", "--torch_threads", str(threads)]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    match = RESULT_FPS.search(completed.stdout)
    if completed.returncode != 0 or match is None:
        print(f"{workload} --torch_threads {threads} failed (exit {completed.returncode}):\n{completed.stdout[-2000:]}"
              f"{completed.stderr[-2000:]}", file=sys.stderr)
        return None
    return float(match.group(1))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    args = parser.parse_args(argv)
    machine = machine_description()
    load_start = os.getloadavg()[0]
    available = [w for w in args.workloads if WORKLOADS[w][0] is None or importlib.util.find_spec(WORKLOADS[w][0])]
    fps: Dict[tuple, List[float]] = {(w, t): [] for w in available for t in args.threads}
    with tempfile.TemporaryDirectory(prefix="pysf_threads_") as train_dir:
        for round_index in range(args.rounds):
            for workload in available:
                for threads in args.threads:
                    value = run_once(workload, threads, train_dir)
                    if value is not None:
                        fps[(workload, threads)].append(value)
                    print(f"round {round_index + 1}: {workload} --torch_threads {threads}: {value} frames/s", flush=True)
    load_end = os.getloadavg()[0]

    headers = ["workload", *[f"{t} thread{'s' if t > 1 else ''}" for t in args.threads]]
    rows = [[workload, *[" / ".join(f"{v:.0f}" for v in fps[(workload, t)]) or "failed" for t in args.threads]]
            for workload in available]
    rows += [[workload, *["not installed"] * len(args.threads)] for workload in args.workloads if workload not in available]
    print_table(headers, rows)
    medians = {w: {t: statistics.median(fps[(w, t)]) for t in args.threads if fps[(w, t)]} for w in available}
    body = "\n".join([
        "## Threads of the training process (`--torch_threads`, `benchmarks/torch_threads.py`)",
        "",
        machine_line(machine),
        f"End-to-end env frames/s per run, {args.rounds} alternating rounds; load average {load_start:.1f} at the "
        f"start, {load_end:.1f} at the end (the runs' own). Workloads:",
        "",
        *[f"- `{w}`: {WORKLOADS[w][2]}." for w in args.workloads],
        "",
        markdown_table(headers, rows),
        "",
        "Medians: " + "; ".join(f"{w}: " + ", ".join(f"{t} -> {m:.0f}" for t, m in per.items()) for w, per in medians.items()),
    ])
    update_results_section("torch_threads", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
