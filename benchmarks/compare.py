"""pysf side by side with its peers on this machine, in one run (``make bench``).

    .venv/bin/python -m benchmarks.compare [--reps 3] [--env_steps 1000000] [--systems ...] [--smoke]

1. CartPole-v1 training, ``--env_steps`` env steps per run, ``--reps`` runs per system, the systems
   alternating (rep r starts with the r-th system) so that machine drift hits all of them alike:
   * pysf native env:   ``python -m pysf.train --env CartPole-v1`` (C++ CartPole, pysf's CartPole defaults);
   * pysf gymnasium env: the same with ``--env_backend gym`` (gymnasium's CartPole in 2 worker processes);
   * Sample Factory 2.1.1: ``python -m sf_examples.train_gym_env --env=CartPole-v1 --device=cpu
     --num_workers=2 --num_envs_per_worker=32 --use_rnn=False --recurrence=1 --with_vtrace=False
     --batch_size=512 --reward_scale=0.1``;
   * Stable-Baselines3 2.9.2 PPO with rl-zoo's CartPole-v1 hyperparameters (benchmarks/peers/sb3_cartpole.py).
   Per run: steady-state env frames/s, seconds from process start until the 100-episode mean reward first
   reaches 475, env steps at that point, final reward, peak RSS (and PSS) of the whole process tree.
2. Sampling only (benchmarks/sampling.py): pysf's native and gymnasium paths vs a plain Python loop.
3. Inference latency (benchmarks/inference.py): the default policy at batch 1, 64, 1024, C++ vs eager.

Peers run from their own venvs (benchmarks/peers/setup_peers.sh); a peer whose venv is missing is reported
as "not installed". Results: a table on stdout, benchmarks/RESULTS.md (section "comparison"),
benchmarks/results/compare.json and PNG plots in benchmarks/results/. ``--smoke`` runs a tiny version
into a scratch folder (tests use it) and leaves RESULTS.md alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from benchmarks.process_monitor import ProcessRun, run_monitored
from benchmarks.report import machine_description, machine_line, markdown_table, print_table, update_results_section

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
THRESHOLD = 475.0
SECONDS_PAST_TIME_LIMIT = 30.0  # start-up allowance of a run the benchmark ends itself (System.ignores_time_limit)
DEFAULT_PEERS_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pysf" / "peers"
Curve = List[Tuple[float, int, float]]  # (seconds since process start, env steps, 100-episode mean reward)

TARGETS = dict(
    native_fps_vs_sf=20.0,  # pysf native steady frames/s >= 20x Sample Factory's
    native_time_vs_sf=5.0,  # pysf native reaches 475 >= 5x sooner than Sample Factory
    native_time_vs_sb3=3.0,  # ... and >= 3x sooner than Stable-Baselines3
    gym_fps_vs_sf=2.0,  # pysf gymnasium path >= 2x Sample Factory's frames/s
)


# ---- one training run ------------------------------------------------------------------------------------


@dataclass
class TrainingRun:
    """The figures of one training process."""

    system: str
    rep: int
    seed: int
    ok: bool
    error: str = ""
    env_steps: int = 0
    wall_seconds: float = 0.0
    steady_fps: Optional[float] = None
    threshold_seconds: Optional[float] = None
    threshold_steps: Optional[int] = None
    final_reward: Optional[float] = None
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    stopped_at_time_limit: bool = False
    curve: Curve = field(default_factory=list)
    progress: List[Tuple[float, int]] = field(default_factory=list)  # (seconds, env steps) of every report


def steady_fps_of(progress: List[Tuple[float, int]]) -> Optional[float]:
    """Env steps/s from the first report after training began to the last one."""
    points = [(t, s) for t, s in progress if s > 0]
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def first_crossing(curve: Curve, threshold: float) -> Tuple[Optional[float], Optional[int]]:
    """(seconds, env steps) where the curve first reaches ``threshold``, linearly interpolated between the
    last point below and the first point at or above it (a peer that reports every few seconds is not
    charged for its report interval)."""
    previous = None
    for t, steps, reward in curve:
        if reward >= threshold:
            if previous is None or previous[2] >= reward:
                return t, steps
            fraction = (threshold - previous[2]) / (reward - previous[2])
            return previous[0] + fraction * (t - previous[0]), int(round(previous[1] + fraction * (steps - previous[1])))
        previous = (t, steps, reward)
    return None, None


@dataclass
class System:
    """A trainer to benchmark: how to run it and how to read what it reports."""

    name: str
    python: Path  # the venv interpreter
    describe: str  # the command, for RESULTS.md
    command: Callable[[int, int, float, Path], List[str]]  # (seed, env_steps, time limit, run dir) -> argv
    parse: Callable[[ProcessRun, Path, "TrainingRun"], None]  # fills the run's figures
    # Sample Factory 2.1.1 accepts --train_for_seconds but never counts its training seconds (its runner's
    # total_train_seconds stays 0), so the benchmark ends such a run itself, SECONDS_PAST_TIME_LIMIT after the limit.
    ignores_time_limit: bool = False

    def missing(self) -> Optional[str]:
        """Why this system cannot run here (None when it can)."""
        return None if self.python.exists() else f"not installed ({self.python.parent.parent} missing)"


def parse_pysf_result(process: ProcessRun, run_dir: Path, run: TrainingRun) -> None:
    """pysf reports its own figures in ``<experiment>/result.json``."""
    result = json.loads((run_dir / "exp" / "result.json").read_text())
    run.env_steps = result["env_steps"]
    run.steady_fps = result["steady_state_fps"]
    run.threshold_seconds = result["threshold_seconds_since_process_start"]
    run.threshold_steps = result["threshold_env_steps"]
    run.final_reward = result["final_reward"]
    run.curve = [tuple(p) for p in result["learning_curve"]]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SF_FPS = re.compile(r"Fps is \(10 sec: [^)]*\)\. Total num frames: (\d+)")
_SF_REWARD = re.compile(r"Avg episode reward: \[\(0, '(-?[\d.]+|nan)'\)\]")
_SF_COLLECTED = re.compile(r"Collected \{0: (\d+)\}")


def parse_sample_factory_console(process: ProcessRun, run_dir: Path, run: TrainingRun) -> None:
    """Sample Factory's console: every 5 s a "Fps is (...). Total num frames: N" line, then the 100-episode
    "Avg episode reward"; each point is stamped when its line arrived."""
    frames = 0
    for t, line in process.lines:
        line = _ANSI.sub("", line)
        if match := _SF_FPS.search(line):
            frames = int(match.group(1))
            run.progress.append((t, frames))
        elif (match := _SF_REWARD.search(line)) and match.group(1) != "nan":
            run.curve.append((t, frames, float(match.group(1))))
        elif match := _SF_COLLECTED.search(line):
            run.env_steps = int(match.group(1))
    run.env_steps = run.env_steps or frames
    _figures_from_reports(run)


def _parse_sb3(process: ProcessRun, run_dir: Path, run: TrainingRun) -> None:
    """benchmarks/peers/sb3_cartpole.py prints one JSON line per rollout; points stamped on arrival."""
    for t, line in process.lines:
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("done"):
            run.env_steps = record["steps"]
            run.stopped_at_time_limit = record["stopped_at_time_limit"]
            continue
        run.progress.append((t, record["steps"]))
        if record["reward"] is not None:
            run.curve.append((t, record["steps"], record["reward"]))
    _figures_from_reports(run)


def _figures_from_reports(run: TrainingRun) -> None:
    """A peer's figures from its timestamped reports (pysf reports its own in result.json)."""
    run.steady_fps = steady_fps_of(run.progress)
    run.threshold_seconds, run.threshold_steps = first_crossing(run.curve, THRESHOLD)
    run.final_reward = run.curve[-1][2] if run.curve else None


def make_systems(pysf_python: Path, peers_dir: Path) -> Dict[str, System]:
    """The four systems of the comparison, by name."""

    def pysf_command(*extra: str) -> Callable[[int, int, float, Path], List[str]]:
        def command(seed: int, env_steps: int, seconds: float, run_dir: Path) -> List[str]:
            return [
                str(pysf_python), "-m", "pysf.train", "--env", "CartPole-v1", "--experiment", "exp", "--train_dir",
                str(run_dir), "--seed", str(seed), "--train_for_env_steps", str(env_steps), "--train_for_seconds",
                str(int(seconds)), "--restart_behavior", "overwrite", *extra,
            ]

        return command

    sf_flags = [
        "--env=CartPole-v1", "--device=cpu", "--num_workers=2", "--num_envs_per_worker=32", "--use_rnn=False",
        "--recurrence=1", "--with_vtrace=False", "--batch_size=512", "--reward_scale=0.1",
    ]
    sf_python = peers_dir / "sf" / "bin" / "python"
    sb3_python = peers_dir / "sb3" / "bin" / "python"
    return {
        "pysf-native": System(
            "pysf-native", pysf_python, "python -m pysf.train --env CartPole-v1 --train_for_env_steps N",
            pysf_command(), parse_pysf_result,
        ),
        "pysf-gym": System(
            "pysf-gym", pysf_python, "python -m pysf.train --env CartPole-v1 --env_backend gym --train_for_env_steps N",
            pysf_command("--env_backend", "gym"), parse_pysf_result,
        ),
        "sample-factory": System(
            "sample-factory", sf_python, "python -m sf_examples.train_gym_env " + " ".join(sf_flags) + " --train_for_env_steps=N",
            lambda seed, steps, seconds, run_dir: [
                str(sf_python), "-m", "sf_examples.train_gym_env", *sf_flags, f"--train_for_env_steps={steps}",
                f"--train_for_seconds={int(seconds)}", f"--seed={seed}", "--experiment=exp", f"--train_dir={run_dir}",
            ],
            parse_sample_factory_console, ignores_time_limit=True,
        ),
        "sb3": System(
            "sb3", sb3_python, "python benchmarks/peers/sb3_cartpole.py --env_steps N  (PPO, rl-zoo hyperparameters)",
            lambda seed, steps, seconds, run_dir: [
                str(sb3_python), str(BENCHMARKS / "peers" / "sb3_cartpole.py"), "--env_steps", str(steps), "--seed",
                str(seed), "--max_seconds", str(seconds),
            ],
            _parse_sb3,
        ),
    }


def train_once(system: System, rep: int, seed: int, env_steps: int, time_limit: float, scratch: Path) -> TrainingRun:
    """One training process of ``system``, timed and measured from the outside."""
    run = TrainingRun(system=system.name, rep=rep, seed=seed, ok=False)
    run_dir = scratch / f"{system.name}_rep{rep}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)  # peers must not see pysf's source tree
    # The hard limit leaves room for start-up and the final checkpoint after the trainer's own time limit.
    timeout = time_limit + (SECONDS_PAST_TIME_LIMIT if system.ignores_time_limit else 120)
    process = run_monitored(system.command(seed, env_steps, time_limit, run_dir), cwd=scratch, env=env, timeout=timeout)
    run.wall_seconds, run.peak_rss_mb, run.peak_pss_mb = process.wall_seconds, process.peak_rss_mb, process.peak_pss_mb
    ended_by_us = system.ignores_time_limit and process.timed_out
    if process.returncode != 0 and not ended_by_us:
        run.error = f"exit status {process.returncode}{' (killed at the time limit)' if process.timed_out else ''}:\n{process.tail()}"
        return run
    try:
        system.parse(process, run_dir, run)
    except (OSError, ValueError, KeyError) as exc:
        run.error = f"could not read its output ({exc}):\n{process.tail()}"
        return run
    run.stopped_at_time_limit = run.stopped_at_time_limit or ended_by_us or run.env_steps < env_steps
    run.ok = True
    return run


def alternating_order(names: Sequence[str], rep: int) -> List[str]:
    """Rep ``r`` starts with the r-th system: each system runs early and late equally often."""
    shift = rep % len(names)
    return list(names[shift:]) + list(names[:shift])


# ---- summaries -------------------------------------------------------------------------------------------


def median_of(runs: List[TrainingRun], key: str) -> Optional[float]:
    values = [getattr(r, key) for r in runs if r.ok and getattr(r, key) is not None]
    return statistics.median(values) if values else None


def fmt(value: Optional[float], pattern: str = "{:,.0f}") -> str:
    return "-" if value is None else pattern.format(value)


def training_table(names: Sequence[str], runs: List[TrainingRun], unavailable: Dict[str, str]) -> Tuple[List[str], List[List[str]]]:
    """Median per system over its reps (runs that failed are counted in the last column)."""
    headers = ["system", "steady frames/s", "s to 475", "env steps at 475", "final reward", "peak RSS MB (tree)",
               "peak PSS MB (tree)", "runs ok / reached 475"]
    rows = []
    for name in names:
        if name in unavailable:
            rows.append([name, unavailable[name], "", "", "", "", "", ""])
            continue
        mine = [r for r in runs if r.system == name]
        ok = [r for r in mine if r.ok]
        reached = [r for r in ok if r.threshold_seconds is not None]
        rows.append([
            name, fmt(median_of(mine, "steady_fps")), fmt(median_of(mine, "threshold_seconds"), "{:.1f}"),
            fmt(median_of(mine, "threshold_steps")), fmt(median_of(mine, "final_reward"), "{:.1f}"),
            fmt(median_of(mine, "peak_rss_mb")), fmt(median_of(mine, "peak_pss_mb")), f"{len(ok)}/{len(mine)} / {len(reached)}",
        ])
    return headers, rows


def ratios(runs: List[TrainingRun]) -> Dict[str, Optional[float]]:
    """pysf / peer ratios of the medians (for times: peer seconds / pysf seconds, i.e. how many times sooner)."""

    def med(system: str, key: str) -> Optional[float]:
        return median_of([r for r in runs if r.system == system], key)

    def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
        return a / b if a is not None and b else None

    return dict(
        native_fps_vs_sf=ratio(med("pysf-native", "steady_fps"), med("sample-factory", "steady_fps")),
        gym_fps_vs_sf=ratio(med("pysf-gym", "steady_fps"), med("sample-factory", "steady_fps")),
        native_fps_vs_sb3=ratio(med("pysf-native", "steady_fps"), med("sb3", "steady_fps")),
        native_time_vs_sf=ratio(med("sample-factory", "threshold_seconds"), med("pysf-native", "threshold_seconds")),
        native_time_vs_sb3=ratio(med("sb3", "threshold_seconds"), med("pysf-native", "threshold_seconds")),
        gym_time_vs_sf=ratio(med("sample-factory", "threshold_seconds"), med("pysf-gym", "threshold_seconds")),
        native_memory_vs_sf=ratio(med("pysf-native", "peak_rss_mb"), med("sample-factory", "peak_rss_mb")),
        gym_memory_vs_sf=ratio(med("pysf-gym", "peak_rss_mb"), med("sample-factory", "peak_rss_mb")),
    )


RATIO_LABELS = dict(
    native_fps_vs_sf="pysf native frames/s ÷ Sample Factory",
    gym_fps_vs_sf="pysf gymnasium path frames/s ÷ Sample Factory",
    native_fps_vs_sb3="pysf native frames/s ÷ SB3",
    native_time_vs_sf="Sample Factory s to 475 ÷ pysf native",
    native_time_vs_sb3="SB3 s to 475 ÷ pysf native",
    gym_time_vs_sf="Sample Factory s to 475 ÷ pysf gymnasium path",
    native_memory_vs_sf="pysf native peak RSS ÷ Sample Factory",
    gym_memory_vs_sf="pysf gymnasium path peak RSS ÷ Sample Factory",
)


def verdicts(r: Dict[str, Optional[float]]) -> List[Tuple[str, str]]:
    """(target, met / MISSED / n/a) for the issue's targets."""
    out = []
    for key, target in TARGETS.items():
        value = r.get(key)
        out.append((f"{RATIO_LABELS[key]} >= {target:g}x", "n/a" if value is None else ("met" if value >= target else "MISSED")))
    for key in ("native_memory_vs_sf", "gym_memory_vs_sf"):
        value = r.get(key)
        out.append((f"{RATIO_LABELS[key]} < 1", "n/a" if value is None else ("met" if value < 1 else "MISSED")))
    return out


# ---- the other sections ----------------------------------------------------------------------------------


def run_section_script(module: str, args: List[str], pysf_python: Path, json_path: Path, timeout: float) -> Optional[dict]:
    """``python -m benchmarks.<module>`` in its own process (so its threads do not share the driver's); its JSON
    result."""
    command = [str(pysf_python), "-m", f"benchmarks.{module}", *args, "--json", str(json_path)]
    process = run_monitored(command, cwd=ROOT, timeout=timeout, echo_prefix="    ")
    if process.returncode != 0 or not json_path.exists():
        print(f"  benchmarks.{module} failed (exit status {process.returncode}):\n{process.tail(20)}", flush=True)
        return None
    return json.loads(json_path.read_text())


def peer_versions(systems: Dict[str, System], extra: Sequence[str] = ()) -> Dict[str, str]:
    """Package versions in each venv (of the systems given), read by its own interpreter; ``extra`` packages are
    listed where they are installed."""
    packages = {
        "pysf": ["torch", "numpy", "gymnasium"],
        "sample-factory": ["sample-factory", "torch", "numpy", "gymnasium"],
        "sb3": ["stable-baselines3", "torch", "numpy", "gymnasium"],
    }
    out = {}
    for name, names in packages.items():
        system = systems.get("pysf-native" if name == "pysf" else name)
        if system is None or system.missing():
            continue
        code = ("import importlib.metadata as m, json\n"
                "def version(p):\n"
                "    try:\n"
                "        return m.version(p)\n"
                "    except m.PackageNotFoundError:\n"
                "        return None\n"
                f"print(json.dumps({{p: version(p) for p in {[*names, *extra]!r}}}))")
        completed = subprocess.run([str(system.python), "-c", code], capture_output=True, text=True)
        if completed.returncode == 0:
            versions = json.loads(completed.stdout)
            out[name] = ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None)
    return out


# ---- plots -----------------------------------------------------------------------------------------------

COLORS = {"pysf-native": "tab:blue", "pysf-gym": "tab:cyan", "sample-factory": "tab:orange", "sb3": "tab:green"}


def save_plots(runs: List[TrainingRun], names: Sequence[str], out_dir: Path) -> List[Path]:
    """Reward vs wall-clock seconds and vs env steps (every run, one colour per system), and FPS bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for x_index, x_label, file_name, log_x in ((0, "seconds since process start", "compare_reward_vs_time.png", True),
                                               (1, "env steps", "compare_reward_vs_steps.png", False)):
        fig, ax = plt.subplots(figsize=(8, 5))
        for name in names:
            for i, run in enumerate(r for r in runs if r.system == name and r.ok and r.curve):
                xs = [p[x_index] for p in run.curve]
                ax.plot(xs, [p[2] for p in run.curve], color=COLORS.get(name), alpha=0.8, linewidth=1.2,
                        label=name if i == 0 else None)
        ax.axhline(THRESHOLD, color="gray", linestyle="--", linewidth=0.8, label=f"{THRESHOLD:g}")
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(x_label + (" (log scale)" if log_x else ""))
        ax.set_ylabel("mean reward, last 100 episodes")
        ax.set_title(f"CartPole-v1 training: reward vs {x_label}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / file_name, dpi=110)
        plt.close(fig)
        paths.append(out_dir / file_name)

    shown = [n for n in names if median_of([r for r in runs if r.system == n], "steady_fps")]
    if shown:
        values = [median_of([r for r in runs if r.system == n], "steady_fps") for n in shown]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        bars = ax.bar(shown, values, color=[COLORS.get(n) for n in shown])
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values])
        ax.set_yscale("log")
        ax.set_ylabel("steady-state env frames/s (median, log scale)")
        ax.set_title("CartPole-v1 training throughput")
        fig.tight_layout()
        fig.savefig(out_dir / "compare_fps.png", dpi=110)
        plt.close(fig)
        paths.append(out_dir / "compare_fps.png")
    return paths


# ---- RESULTS.md ------------------------------------------------------------------------------------------


def sampling_summary(sampling: Optional[dict]) -> Tuple[List[str], List[List[str]]]:
    """The headline rows of benchmarks/sampling.py's result."""
    headers = ["sampling (no learner)", "envs", "workers", "env steps/s", "vs plain Python"]
    if not sampling:
        return headers, [["benchmarks/sampling.py failed or was skipped", "", "", "", ""]]
    plain = sampling["plain_python"]
    rows = []
    native = [r for r in sampling["rows"] if r["system"] == "pysf native"]
    if native:
        best = max(native, key=lambda r: r["steps_per_sec"])
        rows.append(["pysf native (best row)", best["envs"], f"{best['workers']} threads", best["steps_per_sec"]])
    for r in sampling["rows"]:
        if r["system"] == "pysf gymnasium path":
            rows.append(["pysf gymnasium path", r["envs"], f"{r['workers']} processes", r["steps_per_sec"]])
    rows.append(["plain Python: eager policy + SyncVectorEnv", 64, "1", plain])
    rows.append(["gymnasium CartPoleEnv.step alone (no policy)", 1, "1", sampling["raw_gymnasium"]])
    return headers, [[a, b, c, f"{v:,.0f}", f"{v / plain:.1f}x"] for a, b, c, v in rows]


def inference_summary(inference: Optional[dict]) -> Tuple[List[str], List[List[str]]]:
    """benchmarks/inference.py's rows: per-batch latency for each model, batch size and path."""
    headers = ["inference model", "batch", "path", "median µs / batch", "p90 µs", "µs / sample"]
    if not inference:
        return headers, [["benchmarks/inference.py failed or was skipped", "", "", "", "", ""]]
    return headers, [
        [r["model"], r["batch"], r["path"], f"{r['median_us']:,.1f}", f"{r['p90_us']:,.1f}", f"{r['per_sample_us']:,.2f}"]
        for r in inference["rows"]
    ]


def results_markdown(args, machine: Dict[str, str], versions: Dict[str, str], systems: Dict[str, System],
                     names: Sequence[str], runs: List[TrainingRun], unavailable: Dict[str, str],
                     sampling: Optional[dict], inference: Optional[dict], plots: List[Path], seconds: float) -> str:
    headers, rows = training_table(names, runs, unavailable)
    r = ratios(runs)
    lines = [
        "## pysf vs Sample Factory vs Stable-Baselines3 (`make bench`)",
        "",
        machine_line(machine),
        "",
        "Versions: " + "; ".join(f"**{k}**: {v}" for k, v in versions.items()) + ".",
        "",
        f"Command: `make bench` = `bash benchmarks/peers/setup_peers.sh` then `.venv/bin/python -m benchmarks.compare "
        f"--reps {args.reps} --env_steps {args.env_steps}`; the whole run took {seconds / 60:.1f} min. "
        "Systems alternate within each repetition (rep r starts with the r-th system).",
        "",
        f"### CartPole-v1 training, {args.env_steps:,} env steps, median of {args.reps} runs",
        "",
        markdown_table(headers, rows),
        "",
        "Ratios (of the medians): " + "; ".join(f"{RATIO_LABELS[k]} = {fmt(v, '{:.2f}')}" for k, v in r.items()) + ".",
        "",
        "Targets: " + "; ".join(f"{t}: **{v}**" for t, v in verdicts(r)) + ".",
        "",
        "Per run:",
        "",
        markdown_table(
            ["system", "rep", "seed", "steady frames/s", "s to 475", "env steps at 475", "final reward", "env steps",
             "wall s", "peak RSS MB", "peak PSS MB", "note"],
            [[x.system, x.rep, x.seed, fmt(x.steady_fps), fmt(x.threshold_seconds, "{:.1f}"), fmt(x.threshold_steps),
              fmt(x.final_reward, "{:.1f}"), fmt(x.env_steps), fmt(x.wall_seconds, "{:.1f}"), fmt(x.peak_rss_mb),
              fmt(x.peak_pss_mb),
              ("FAILED: " + x.error.splitlines()[0] if not x.ok else "") + (" stopped at the time limit" if x.ok and x.stopped_at_time_limit else "")]
             for x in runs],
        ),
        "",
        "Commands (N = env steps; each run in a fresh process with its own `--train_dir` and `--seed`):",
        "",
        *[f"- {name}: `{systems[name].describe}`" for name in names],
        "",
        "How the figures are taken: *steady frames/s* runs from the first training iteration (pysf: its own "
        "`result.json`) or the first progress report (peers) to the end, so start-up is excluded; *s to 475* "
        "counts from process start to the first time the mean reward of the last 100 episodes reaches 475 "
        "(pysf: its own report; peers: their reports timestamped as they arrive and interpolated between the "
        "last report below 475 and the first one at or above it, so Sample Factory's 5-second report interval "
        "is not charged to it); *peak RSS/PSS* is the peak over the run of the sum over the trainer's process "
        f"tree, sampled every 0.2 s (RSS counts shared libraries once per process; PSS splits them). Runs are "
        f"capped at {args.time_limit:.0f} s of training (`--train_for_seconds`, SB3: `--max_seconds`) so that "
        "`make bench` fits in 30 minutes; a capped run says so in the per-run table.",
        "",
    ]
    if plots:
        lines += ["Plots: " + ", ".join(f"[{p.name}](results/{p.name})" for p in plots) + ".", ""]
        lines += [f"![{p.stem}](results/{p.name})" for p in plots] + [""]
    s_headers, s_rows = sampling_summary(sampling)
    lines += ["### Sampling only (no learner), from `benchmarks/sampling.py`", "", markdown_table(s_headers, s_rows), ""]
    i_headers, i_rows = inference_summary(inference)
    lines += ["### Inference latency, from `benchmarks/inference.py`", "", markdown_table(i_headers, i_rows), ""]
    if inference and inference.get("notes"):
        lines += [f"- {note}" for note in inference["notes"]] + [""]
    return "\n".join(lines)


# ---- main ------------------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="training runs per system")
    parser.add_argument("--env_steps", type=int, default=1_000_000)
    parser.add_argument("--time_limit", type=float, default=240.0, help="seconds of training per run at most")
    parser.add_argument("--systems", nargs="+", default=["pysf-native", "pysf-gym", "sample-factory", "sb3"])
    parser.add_argument("--peers_dir", type=Path, default=Path(os.environ.get("PYSF_PEERS_DIR", DEFAULT_PEERS_DIR)))
    parser.add_argument("--skip", nargs="*", default=[], choices=["training", "sampling", "inference"])
    parser.add_argument("--out_dir", type=Path, default=None, help="results folder (default benchmarks/results)")
    parser.add_argument("--smoke", action="store_true", help="1 short run per system, tiny sampling/inference; "
                        "results go to a scratch folder (or --out_dir), RESULTS.md is not touched")
    args = parser.parse_args(argv)
    if args.smoke:
        args.reps, args.env_steps, args.time_limit = 1, min(args.env_steps, 30_000), min(args.time_limit, 60.0)
    started = time.time()
    pysf_python = Path(sys.executable)
    systems = make_systems(pysf_python, args.peers_dir)
    unknown = [n for n in args.systems if n not in systems]
    if unknown:
        parser.error(f"unknown system(s) {unknown}; choose from {list(systems)}")
    names = list(args.systems)
    unavailable = {n: reason for n in names if (reason := systems[n].missing())}
    for name, reason in unavailable.items():
        print(f"{name}: {reason} — skipped (run benchmarks/peers/setup_peers.sh)", flush=True)
    out_dir = args.out_dir or (Path(tempfile.mkdtemp(prefix="pysf_bench_smoke_")) if args.smoke else BENCHMARKS / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_description()
    print(machine_line(machine), flush=True)

    runs: List[TrainingRun] = []
    if "training" not in args.skip:
        runnable = [n for n in names if n not in unavailable]
        with tempfile.TemporaryDirectory(prefix="pysf_bench_runs_") as scratch:
            for rep in range(args.reps):
                for name in alternating_order(runnable, rep):
                    print(f"[rep {rep + 1}/{args.reps}] {name}: training CartPole-v1 for {args.env_steps:,} env steps ...", flush=True)
                    run = train_once(systems[name], rep, rep, args.env_steps, args.time_limit, Path(scratch))
                    runs.append(run)
                    if run.ok:
                        print(f"    {fmt(run.steady_fps)} frames/s steady, 475 after {fmt(run.threshold_seconds, '{:.1f}')} s / "
                              f"{fmt(run.threshold_steps)} steps, final {fmt(run.final_reward, '{:.1f}')}, "
                              f"peak RSS {fmt(run.peak_rss_mb)} MB, {run.wall_seconds:.1f} s wall", flush=True)
                    else:
                        print(f"    FAILED: {run.error}", flush=True)

    sampling = inference = None
    if "sampling" not in args.skip:
        print("sampling throughput (benchmarks/sampling.py) ...", flush=True)
        sampling = run_section_script("sampling", ["--smoke"] if args.smoke else ["--seconds", "2"], pysf_python,
                                      out_dir / "compare_sampling.json", timeout=600)
    if "inference" not in args.skip:
        print("inference latency (benchmarks/inference.py) ...", flush=True)
        inference = run_section_script("inference", ["--smoke"] if args.smoke else [], pysf_python,
                                       out_dir / "compare_inference.json", timeout=300)

    plots = save_plots(runs, names, out_dir) if runs else []
    print()
    headers, rows = training_table(names, runs, unavailable)
    if runs:
        print_table(headers, rows)
        print()
        for key, value in ratios(runs).items():
            print(f"  {RATIO_LABELS[key]}: {fmt(value, '{:.2f}')}")
        for target, verdict in verdicts(ratios(runs)):
            print(f"  target {target}: {verdict}")
    for table in (sampling_summary(sampling), inference_summary(inference)):
        if table[1] and (sampling or inference):
            print()
            print_table(*table)
    seconds = time.time() - started
    versions = peer_versions(systems)
    (out_dir / "compare.json").write_text(json.dumps(dict(
        machine=machine, versions=versions, args={k: str(v) for k, v in vars(args).items()}, unavailable=unavailable,
        runs=[asdict(r) for r in runs], ratios=ratios(runs), sampling=sampling, inference=inference, seconds=seconds,
    ), indent=2))
    print(f"\nresults: {out_dir} ({seconds / 60:.1f} min)")
    if not args.smoke:
        update_results_section("comparison", results_markdown(
            args, machine, versions, systems, names, runs, unavailable, sampling, inference, plots, seconds))
        print("RESULTS.md updated (section 'comparison')")
    failed = [r for r in runs if not r.ok]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
