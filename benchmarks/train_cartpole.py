"""End-to-end training benchmark: CartPole-v1 on pysf's native engine.

    .venv/bin/python -m benchmarks.train_cartpole [--seeds 0 1 2] [--env_steps 1000000] [--smoke]

Runs ``python -m pysf.train`` once per seed (a fresh process each time, so start-up is included) and
reads the figures pysf itself reports in ``<experiment>/result.json``: steady-state env frames/s (median
of the 10-second FPS at each report), seconds from process start until the 100-episode mean reward first
reaches 475, env steps at that point, final reward, peak RSS. Prints the per-seed table and the median, and
writes them to benchmarks/RESULTS.md (section "training") and benchmarks/results/train_cartpole.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from benchmarks.report import machine_description, machine_line, markdown_table, print_table, save_json, update_results_section

ROOT = Path(__file__).resolve().parents[1]
FPS_TARGET = 300_000
SECONDS_TARGET = 5.0


def run_pysf(seed: int, env_steps: int, train_dir: str, extra: List[str]) -> Dict:
    """One training process; returns its result.json plus the wall time of the whole process."""
    experiment = f"bench_cartpole_seed{seed}"
    cmd = [
        sys.executable, "-m", "pysf.train", "--env", "CartPole-v1", "--experiment", experiment, "--train_dir", train_dir,
        "--seed", str(seed), "--train_for_env_steps", str(env_steps), "--restart_behavior", "overwrite", *extra,
    ]
    start = time.time()
    completed = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.time() - start
    if completed.returncode != 0:
        raise RuntimeError(f"pysf.train failed (seed {seed}):\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    result = json.loads((Path(train_dir) / experiment / "result.json").read_text())
    result["process_wall_seconds"] = wall
    result["seed"] = seed
    return result


def fmt(value: Optional[float], pattern: str = "{:,.0f}") -> str:
    return "-" if value is None else pattern.format(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--env_steps", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="one short run; does not write results")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="flags passed to pysf.train after --")
    args = parser.parse_args(argv)
    extra = [a for a in args.extra if a != "--"]
    seeds = args.seeds[:1] if args.smoke else args.seeds
    env_steps = 50_000 if args.smoke else args.env_steps
    machine = machine_description()
    print(machine_line(machine))

    results = []
    with tempfile.TemporaryDirectory(prefix="pysf_bench_") as train_dir:
        for seed in seeds:
            result = run_pysf(seed, env_steps, train_dir, extra)
            results.append(result)
            print(
                f"  seed {seed}: {fmt(result['steady_state_fps'])} frames/s steady, "
                f"475 reached after {fmt(result['threshold_seconds_since_process_start'], '{:.1f}')} s / "
                f"{fmt(result['threshold_env_steps'])} env steps, final reward {fmt(result['final_reward'], '{:.1f}')}",
                flush=True,
            )

    def median(key: str) -> Optional[float]:
        values = [r[key] for r in results if r.get(key) is not None]
        return statistics.median(values) if values else None

    headers = ["seed", "steady frames/s", "avg frames/s", "s to 475 (from process start)", "env steps at 475", "final reward", "peak RSS MB"]
    rows = [
        [r["seed"], fmt(r["steady_state_fps"]), fmt(r["fps"]), fmt(r["threshold_seconds_since_process_start"], "{:.1f}"),
         fmt(r["threshold_env_steps"]), fmt(r["final_reward"], "{:.1f}"), fmt(r["peak_rss_mb"])]
        for r in results
    ]
    rows.append(["median", fmt(median("steady_state_fps")), fmt(median("fps")), fmt(median("threshold_seconds_since_process_start"), "{:.1f}"),
                 fmt(median("threshold_env_steps")), fmt(median("final_reward"), "{:.1f}"), fmt(median("peak_rss_mb"))])
    print()
    print_table(headers, rows)
    fps, seconds = median("steady_state_fps"), median("threshold_seconds_since_process_start")
    verdict = (
        f"targets: >= {FPS_TARGET:,} frames/s: {'met' if fps and fps >= FPS_TARGET else 'MISSED'}; "
        f"<= {SECONDS_TARGET:.0f} s to 475: {'met' if seconds is not None and seconds <= SECONDS_TARGET else 'MISSED'}"
    )
    print(verdict)
    if args.smoke:
        return 0
    save_json("train_cartpole", dict(machine=machine, env_steps=env_steps, extra_flags=extra, results=results))
    from pysf.envs.native_defaults import native_env_defaults

    defaults = ", ".join(f"{k}={v}" for k, v in native_env_defaults("CartPole-v1").items())
    body = "\n".join(
        [
            "## CartPole-v1 training (native engine)",
            "",
            machine_line(machine),
            "",
            f"Command: `.venv/bin/python -m benchmarks.train_cartpole` = `python -m pysf.train --env CartPole-v1 "
            f"--train_for_env_steps {env_steps}` per seed{' ' + ' '.join(extra) if extra else ''}, a fresh process each. "
            f"pysf's CartPole defaults: {defaults}. Figures come from each run's `result.json` (steady state: from "
            f"the first training iteration to the end; seconds to 475: from process start).",
            "",
            markdown_table(headers, rows),
            "",
            verdict + ".",
        ]
    )
    update_results_section("training", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
