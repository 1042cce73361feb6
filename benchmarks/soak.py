"""Memory and stability soak: pysf's gymnasium path trained for a long time, its process tree's memory watched.

    .venv/bin/python -m benchmarks.soak [--minutes 20] [--num_workers 2] [--num_envs_per_worker 256]
                                        [--warmup_minutes M] [--interval 2] [--output PATH] [--smoke]

Runs ``python -m pysf.train --env CartPole-v1 --env_backend gym --num_workers 2 --num_envs_per_worker 256
--train_for_seconds <minutes * 60>`` (gymnasium's CartPole in env worker processes, not pysf's C++ env) in a
scratch train_dir, through benchmarks/process_monitor.py (output captured, peak tree RSS/PSS every 0.2 s, the
process group killed if it overruns). Every ``--interval`` seconds the RSS, PSS and USS of each process of the
trainer's tree (main process, each env worker, the forkserver, multiprocessing's resource tracker) are recorded with the
1-minute load average.

Growth is measured after a warm-up (default: the larger of 1 minute and 10% of the run, and never before the
first training report), since start-up, TorchScript profiling runs and allocator warm-up are not leaks; the
window ends at the last training report, before the final checkpoint and shutdown. Per process and for the
whole tree: the median over the first and the last ``min(30 s, 10% of the window)`` of the window, the growth
between the two in %, and the least-squares slope over every sample of the window in MB/hour (less sensitive
to a noisy end point). The checks: exit status 0, no "Traceback" and no word "error" in the output,
``<experiment>/result.json`` written, tree RSS growth below ``--max_growth_percent`` (2%).

The machine is shared: the load average at start and end (and its range during the run) and the number of
other processes using >= 20% of a core at start and end are recorded with the result.

Prints markdown tables, writes the JSON result to ``--output`` (default benchmarks/results/soak.json) and, for
a full run, the "soak" section of benchmarks/RESULTS.md. ``--smoke`` is a ~40 s run (2x16 envs, 30 s of
training) whose result goes to a scratch folder unless ``--output`` is given; RESULTS.md is not touched. The
exit status is 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import psutil

from benchmarks.process_monitor import ProcessRun, run_monitored
from benchmarks.report import RESULTS_DIR, machine_description, machine_line, markdown_table, update_results_section

ENV = "CartPole-v1"
EXPERIMENT = "soak"
MAX_GROWTH_PERCENT = 2.0
END_WINDOW_SECONDS = 30.0  # the end points are medians over this long (or 10% of the window, if shorter)
BUSY_CPU_PERCENT = 20.0  # another process at or above this share of one core counts as competing for the CPUs
# pysf's runner logs one of these every few seconds while training (Sample Factory's wording).
TRAINING_REPORT = re.compile(r"Fps is \(")
ERROR_LINE = re.compile(r"Traceback|\berror\b", re.IGNORECASE)
METRICS = ("rss", "pss", "uss")


# ---- sampling the process tree ---------------------------------------------------------------------------


@dataclass
class MemorySample:
    """One look at the trainer's process tree."""

    seconds: float  # since the trainer was started
    load1: float  # 1-minute load average of the machine
    mb: Dict[str, Dict[str, float]] = field(default_factory=dict)  # process label -> {"rss"|"pss"|"uss": MiB}

    def tree(self, metric: str) -> float:
        return sum(values[metric] for values in self.mb.values())


class TreeSampler:
    """Records every process of the trainer's tree every ``interval`` seconds, from a thread.

    process_monitor starts the trainer and owns its Popen, so the trainer is found here as the child of
    this process whose command line holds ``marker`` (its unique train_dir).
    """

    def __init__(self, marker: str, interval: float, progress_every: float) -> None:
        self.marker = marker
        self.interval = interval
        self.progress_every = progress_every
        self.samples: List[MemorySample] = []
        self.labels: Dict[int, str] = {}  # pid -> label, fixed when the process is first seen
        self.main_pid: Optional[int] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = 0.0

    def start(self, start_time: float) -> None:
        self._start = start_time
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _find_trainer(self) -> Optional[psutil.Process]:
        for child in psutil.Process().children():
            try:
                if any(self.marker in arg for arg in child.cmdline()):
                    return child
            except psutil.Error:
                continue
        return None

    def _label(self, process: psutil.Process) -> str:
        if process.pid not in self.labels:
            if process.pid == self.main_pid:
                label = "main"
            else:
                command = " ".join(process.cmdline())
                try:  # env workers are forked by pysf's forkserver (which runs the same command line) or spawned
                    forked = process.ppid() != self.main_pid and "forkserver" in " ".join(process.parent().cmdline())
                except (psutil.Error, AttributeError):
                    forked = False
                if "resource_tracker" in command:
                    label = "resource tracker"
                elif "forkserver" in command and not forked:
                    label = "forkserver"
                elif forked or "spawn_main" in command:
                    label = f"env worker {sum(1 for v in self.labels.values() if v.startswith('env worker')) + 1}"
                else:
                    label = f"other {process.name()}"
                label = f"{label} (pid {process.pid})"
            self.labels[process.pid] = label
        return self.labels[process.pid]

    def _run(self) -> None:
        root = None
        while root is None and not self._stop.wait(0.1):
            root = self._find_trainer()
        if root is None:
            return
        self.main_pid = root.pid
        self.labels[root.pid] = "main"
        last_progress = 0.0
        while not self._stop.wait(self.interval):
            try:
                processes = [root] + sorted(root.children(recursive=True), key=lambda p: p.pid)
            except psutil.Error:
                continue  # the trainer has exited; the driver stops this thread next
            sample = MemorySample(seconds=time.time() - self._start, load1=os.getloadavg()[0])
            for process in processes:
                try:
                    info = process.memory_full_info()
                    label = self._label(process)
                except psutil.Error:
                    continue  # exited between the listing and the read
                if info.rss == 0:
                    continue  # a zombie (exited, not yet reaped): no memory to measure
                sample.mb[label] = {"rss": info.rss / 2**20, "pss": info.pss / 2**20, "uss": info.uss / 2**20}
            if sample.mb:
                self.samples.append(sample)
                if sample.seconds - last_progress >= self.progress_every:
                    last_progress = sample.seconds
                    print(f"  {sample.seconds:7.0f} s: tree RSS {sample.tree('rss'):,.1f} MB, PSS {sample.tree('pss'):,.1f} MB, "
                          f"{len(sample.mb)} processes, load {sample.load1:.2f}", flush=True)


# ---- the machine's other load ----------------------------------------------------------------------------


def busy_other_processes(exclude: Sequence[int] = (), seconds: float = 1.0) -> List[Tuple[str, float]]:
    """(name, % of one core) of the processes, other than this one and ``exclude``, using at least
    BUSY_CPU_PERCENT over ``seconds``, busiest first."""
    own = {os.getpid(), *exclude}
    processes = []
    for process in psutil.process_iter(["name"]):
        if process.pid in own:
            continue
        try:
            process.cpu_percent(None)  # the first call only starts the measurement
            processes.append(process)
        except psutil.Error:
            pass
    time.sleep(seconds)
    busy = []
    for process in processes:
        try:
            percent = process.cpu_percent(None)
        except psutil.Error:
            continue
        if percent >= BUSY_CPU_PERCENT:
            busy.append((process.info["name"], round(percent, 1)))
    return sorted(busy, key=lambda item: -item[1])


# ---- trends ----------------------------------------------------------------------------------------------


@dataclass
class Trend:
    """How one memory figure moved over the measured window."""

    start_mb: float  # median over the window's first end-window seconds
    end_mb: float  # median over its last end-window seconds
    growth_percent: float  # (end - start) / start
    slope_mb_per_hour: float  # least squares over every sample of the window
    samples: int


def trend(points: Sequence[Tuple[float, float]], end_window: float) -> Optional[Trend]:
    """The trend of (seconds, MiB) ``points`` (time-ordered); None with fewer than 3 points or no time span."""
    if len(points) < 3 or points[-1][0] <= points[0][0]:
        return None
    first, last = points[0][0], points[-1][0]
    head = [mb for t, mb in points if t <= first + end_window] or [points[0][1]]
    tail = [mb for t, mb in points if t >= last - end_window] or [points[-1][1]]
    start_mb, end_mb = statistics.median(head), statistics.median(tail)
    slope, _ = statistics.linear_regression([t for t, _ in points], [mb for _, mb in points])
    growth = 100.0 * (end_mb - start_mb) / start_mb if start_mb > 0 else 0.0
    return Trend(start_mb=start_mb, end_mb=end_mb, growth_percent=growth, slope_mb_per_hour=slope * 3600.0, samples=len(points))


def measured_window(samples: List[MemorySample], lines: List[Tuple[float, str]], warmup_seconds: float) -> Dict[str, Optional[float]]:
    """Seconds (since the trainer started) where growth is measured: from the end of the warm-up, but not
    before the first training report, to the last training report (the final checkpoint and the shutdown
    come after it)."""
    reports = [t for t, line in lines if TRAINING_REPORT.search(line)]
    training_started = reports[0] if reports else None
    end = reports[-1] if reports else (samples[-1].seconds if samples else None)
    start = max(warmup_seconds, training_started or 0.0)
    return dict(training_started_s=training_started, start_s=start, end_s=end)


def end_window_seconds(start: float, end: float) -> float:
    """How long each end point of the window [start, end] is a median over."""
    return min(END_WINDOW_SECONDS, 0.1 * max(end - start, 0.0))


def memory_trends(samples: List[MemorySample], start: float, end: float) -> Dict[str, Dict[str, Optional[dict]]]:
    """{"tree" or a process label: {metric: Trend as a dict, or None}} over samples in [start, end]."""
    window = [s for s in samples if start <= s.seconds <= end]
    end_window = end_window_seconds(start, end)
    labels = sorted({label for s in window for label in s.mb}, key=lambda label: (label != "main", label))
    out: Dict[str, Dict[str, Optional[dict]]] = {}
    for name in ["tree", *labels]:
        out[name] = {}
        for metric in METRICS:
            if name == "tree":
                points = [(s.seconds, s.tree(metric)) for s in window]
            else:
                points = [(s.seconds, s.mb[name][metric]) for s in window if name in s.mb]
            found = trend(points, end_window)
            out[name][metric] = asdict(found) if found else None
    return out


# ---- one soak run ----------------------------------------------------------------------------------------


def train_command(train_dir: Path, seconds: int, num_workers: int, num_envs_per_worker: int) -> List[str]:
    # --train_for_env_steps keeps its default (1e10): the time limit ends the run (the linear learning-rate
    # decay of pysf's CartPole defaults is then negligible over the run).
    return [
        sys.executable, "-m", "pysf.train", "--env", ENV, "--env_backend", "gym", "--experiment", EXPERIMENT,
        "--train_dir", str(train_dir), "--num_workers", str(num_workers), "--num_envs_per_worker",
        str(num_envs_per_worker), "--train_for_seconds", str(seconds), "--restart_behavior", "overwrite",
    ]


def default_warmup_minutes(minutes: float) -> float:
    """max(1 min, 10% of the run), but at most half of it (a short run keeps a window to measure)."""
    return min(max(1.0, 0.1 * minutes), 0.5 * minutes)


def run(minutes: float = 20.0, num_workers: int = 2, num_envs_per_worker: int = 256, warmup_minutes: Optional[float] = None,
        interval: float = 2.0, max_growth_percent: float = MAX_GROWTH_PERCENT, smoke: bool = False) -> dict:
    """One soak run; the result as a JSON-ready dict (``result["ok"]``: every check passed)."""
    if minutes <= 0 or interval <= 0 or num_workers < 1 or num_envs_per_worker < 1:
        raise ValueError(f"--minutes and --interval must be > 0, --num_workers and --num_envs_per_worker >= 1 "
                         f"(got {minutes}, {interval}, {num_workers}, {num_envs_per_worker})")
    warmup_minutes = default_warmup_minutes(minutes) if warmup_minutes is None else warmup_minutes
    if not 0 <= warmup_minutes < minutes:
        raise ValueError(f"--warmup_minutes must be in [0, --minutes) to leave a window to measure (got {warmup_minutes} of {minutes})")
    train_seconds = max(1, int(round(minutes * 60)))
    machine = machine_description()
    load_start = os.getloadavg()
    busy_start = busy_other_processes()

    with tempfile.TemporaryDirectory(prefix="pysf_soak_") as scratch:
        train_dir = Path(scratch) / "train_dir"
        command = train_command(train_dir, train_seconds, num_workers, num_envs_per_worker)
        sampler = TreeSampler(marker=str(train_dir), interval=interval, progress_every=max(10.0, train_seconds / 20))
        print(f"soak: {' '.join(command[1:])}", flush=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        start = time.time()
        sampler.start(start)
        try:
            # The hard limit leaves room for start-up (env decorrelation grows with the envs per worker) and
            # the final checkpoint.
            process: ProcessRun = run_monitored(command, cwd=Path(scratch), env=env, timeout=train_seconds + 300)
        finally:
            sampler.stop()
        result_path = train_dir / EXPERIMENT / "result.json"
        train_result = json.loads(result_path.read_text()) if result_path.exists() else None

    load_end = os.getloadavg()
    busy_end = busy_other_processes()
    window = measured_window(sampler.samples, process.lines, warmup_minutes * 60)
    trends = (memory_trends(sampler.samples, window["start_s"], window["end_s"])
              if window["end_s"] is not None else {})
    error_lines = [line for _, line in process.lines if ERROR_LINE.search(line)]
    tree_rss = trends.get("tree", {}).get("rss")
    checks = {
        "exit status 0": dict(ok=process.returncode == 0, detail=f"exit status {process.returncode}"
                              + (" (killed at the time limit)" if process.timed_out else "")),
        "no error in output": dict(ok=not error_lines, detail=f"{len(error_lines)} line(s) with 'Traceback' or 'error'"),
        "result.json written": dict(ok=train_result is not None, detail=f"<train_dir>/{EXPERIMENT}/result.json"),
        f"tree RSS growth < {max_growth_percent:g}%": dict(
            ok=tree_rss is not None and tree_rss["growth_percent"] < max_growth_percent,
            detail=(f"{tree_rss['growth_percent']:+.2f}%" if tree_rss else
                    "fewer than 3 samples after the warm-up: run longer or lower --interval")),
    }
    loads = [s.load1 for s in sampler.samples]
    result_keys = ("env_steps", "seconds", "fps", "steady_state_fps", "final_reward", "peak_rss_mb")
    return dict(
        benchmark="soak",
        ok=all(check["ok"] for check in checks.values()),
        checks=checks,
        config=dict(env=ENV, env_backend="gym", minutes=minutes, num_workers=num_workers,
                    num_envs_per_worker=num_envs_per_worker, warmup_minutes=warmup_minutes, interval_s=interval,
                    end_window_s=end_window_seconds(window["start_s"], window["end_s"] or 0.0),
                    max_growth_percent=max_growth_percent, smoke=smoke),
        command="python -m " + " ".join(command[2:]).replace(str(train_dir), "<scratch>"),
        machine=machine,
        load=dict(
            loadavg_start=list(load_start), loadavg_end=list(load_end),
            load1_during=dict(min=min(loads), mean=statistics.fmean(loads), max=max(loads)) if loads else None,
            busy_other_processes_start=len(busy_start), busy_other_processes_end=len(busy_end),
            busiest_start=busy_start[:5], busiest_end=busy_end[:5],
        ),
        wall_seconds=process.wall_seconds,
        returncode=process.returncode,
        timed_out=process.timed_out,
        peak_tree_rss_mb=process.peak_rss_mb,
        peak_tree_pss_mb=process.peak_pss_mb,
        train_result={k: train_result.get(k) for k in result_keys} if train_result else None,
        window=window,
        memory=trends,
        error_lines=error_lines[:20],
        output_tail=process.tail(40) if not checks["exit status 0"]["ok"] or error_lines else "",
        samples=[dict(seconds=round(s.seconds, 2), load1=s.load1,
                      mb={label: {k: round(v, 2) for k, v in values.items()} for label, values in s.mb.items()})
                 for s in sampler.samples],
    )


# ---- tables ----------------------------------------------------------------------------------------------


def _cell(value: Optional[float], pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def memory_table(result: dict) -> str:
    """Per process and for the tree: start/end/growth/slope of RSS, and growth/slope of PSS and USS."""
    headers = ["process", "RSS MB at warm-up end", "RSS MB at end", "RSS growth", "RSS MB/hour",
               "PSS MB at end", "PSS growth", "PSS MB/hour", "USS MB at end", "USS growth", "USS MB/hour"]
    rows = []
    for name, metrics in result["memory"].items():
        row = [f"**{name}**" if name == "tree" else name]
        for metric in METRICS:
            t = metrics.get(metric)
            if metric == "rss":
                row.append(_cell(t and t["start_mb"], "{:,.1f}"))
            row += [_cell(t and t["end_mb"], "{:,.1f}"), _cell(t and t["growth_percent"], "{:+.2f}%"),
                    _cell(t and t["slope_mb_per_hour"], "{:+,.1f}")]
        rows.append(row)
    return markdown_table(headers, rows)


def summary_table(result: dict) -> str:
    """The run's facts: throughput, window, machine load, checks."""
    config, load, window, train = result["config"], result["load"], result["window"], result["train_result"] or {}
    during = load["load1_during"]
    rows = [
        ["configuration", f"{config['env']} on the gymnasium path, {config['num_workers']}x{config['num_envs_per_worker']} envs, "
                          f"{config['minutes']:g} min of training"],
        ["env steps, frames/s (steady)", f"{_cell(train.get('env_steps'), '{:,.0f}')}, {_cell(train.get('steady_state_fps'), '{:,.0f}')}"],
        ["measured window", (f"{window['start_s']:.0f}-{window['end_s']:.0f} s after start" if window["end_s"] and window["end_s"] > window["start_s"]
                             else "none (the run ended before the warm-up did)")
                            + f" (warm-up {config['warmup_minutes'] * 60:.0f} s; first training report at {_cell(window['training_started_s'], '{:.0f}')} s); "
                            f"end points: medians over {config['end_window_s']:.0f} s; a sample every {config['interval_s']:g} s"],
        ["peak tree RSS / PSS (0.2 s sampling)", f"{result['peak_tree_rss_mb']:,.0f} / {result['peak_tree_pss_mb']:,.0f} MB"],
        ["load average start → end", f"{load['loadavg_start'][0]:.2f} → {load['loadavg_end'][0]:.2f} (1 min); "
                                     f"during: {_cell(during and during['min'], '{:.2f}')}-{_cell(during and during['max'], '{:.2f}')}"],
        [f"other processes >= {BUSY_CPU_PERCENT:g}% CPU start / end", f"{load['busy_other_processes_start']} / {load['busy_other_processes_end']}"],
        ["wall time", f"{result['wall_seconds']:.0f} s"],
    ]
    rows += [[f"check: {name}", f"{'pass' if check['ok'] else 'FAIL'} ({check['detail']})"] for name, check in result["checks"].items()]
    return markdown_table(["", ""], rows)


def results_markdown(result: dict) -> str:
    """The "soak" section of RESULTS.md."""
    return "\n".join([
        "## Soak: gymnasium path, memory over a long run (`python -m benchmarks.soak`)",
        "",
        machine_line(result["machine"]),
        "",
        f"Command: `.venv/bin/python -m benchmarks.soak --minutes {result['config']['minutes']:g}` = `{result['command']}`, "
        "the trainer's process tree sampled every few seconds (RSS, PSS, USS per process). Growth: medians at the "
        "window's two ends; slope: least squares over the window.",
        "",
        summary_table(result),
        "",
        memory_table(result),
        "",
        f"Verdict: **{'all checks passed' if result['ok'] else 'FAILED'}**.",
    ])


# ---- main ------------------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=None, help="minutes of training (default 20; --smoke: 0.5)")
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--num_envs_per_worker", type=int, default=None, help="default 256; --smoke: 16")
    parser.add_argument("--warmup_minutes", type=float, default=None,
                        help="minutes not measured at the start (default: max(1, 10%% of --minutes), at most half)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between memory samples")
    parser.add_argument("--max_growth_percent", type=float, default=MAX_GROWTH_PERCENT)
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON result (default benchmarks/results/soak.json; --smoke: a scratch folder)")
    parser.add_argument("--smoke", action="store_true",
                        help="~40 s: 2x16 envs, 30 s of training (unless given); RESULTS.md is not touched")
    args = parser.parse_args(argv)
    if args.minutes is None:
        args.minutes = 0.5 if args.smoke else 20.0
    if args.num_envs_per_worker is None:
        args.num_envs_per_worker = 16 if args.smoke else 256
    output = args.output or (Path(tempfile.mkdtemp(prefix="pysf_soak_smoke_")) / "soak.json" if args.smoke else RESULTS_DIR / "soak.json")
    try:
        result = run(minutes=args.minutes, num_workers=args.num_workers, num_envs_per_worker=args.num_envs_per_worker,
                     warmup_minutes=args.warmup_minutes, interval=args.interval, max_growth_percent=args.max_growth_percent,
                     smoke=args.smoke)
    except ValueError as exc:
        parser.error(str(exc))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print()
    print(summary_table(result))
    print()
    print(memory_table(result))
    if result["error_lines"]:
        print("\nlines with 'error' / 'Traceback':\n" + "\n".join(result["error_lines"]))
    if result["output_tail"]:
        print("\nlast output lines:\n" + result["output_tail"])
    print(f"\n{'all checks passed' if result['ok'] else 'FAILED'}; result: {output}")
    if not args.smoke:
        update_results_section("soak", results_markdown(result))
        print("RESULTS.md updated (section 'soak')")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
