"""Run a benchmark subject as a child process: timestamped output lines and the peak memory of its tree.

Memory is sampled from /proc every 0.2 s over the child and all its descendants (worker processes
included): the sum of RSS (what ``ps`` shows; shared pages such as torch's libraries count once per
process) and the sum of PSS (shared pages split between the processes that map them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import psutil

SAMPLE_INTERVAL = 0.2


@dataclass
class ProcessRun:
    """What one child process did."""

    returncode: int
    wall_seconds: float
    lines: List[Tuple[float, str]] = field(default_factory=list)  # (seconds since start, line)
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    timed_out: bool = False

    def tail(self, n: int = 40) -> str:
        """The last ``n`` output lines, for error messages."""
        return "\n".join(line for _, line in self.lines[-n:])


def _tree_memory_mb(root: psutil.Process) -> Tuple[float, float]:
    """(sum of RSS, sum of PSS) over ``root`` and its descendants, in MiB."""
    try:
        processes = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0.0, 0.0
    rss = pss = 0
    for process in processes:
        try:
            text = Path(f"/proc/{process.pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    return rss / 1024.0, pss / 1024.0


def run_monitored(cmd: Sequence[str], cwd: Path, env: Optional[Dict[str, str]] = None, timeout: float = 600.0,
                  echo_prefix: Optional[str] = None) -> ProcessRun:
    """Run ``cmd`` to completion (or ``timeout``, then kill its whole process group); stderr joins stdout."""
    start = time.time()
    child = subprocess.Popen(
        list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace", start_new_session=True,
    )
    run = ProcessRun(returncode=-1, wall_seconds=0.0)
    done = threading.Event()

    def sample_memory() -> None:
        root = psutil.Process(child.pid)
        while not done.wait(SAMPLE_INTERVAL):
            rss, pss = _tree_memory_mb(root)
            run.peak_rss_mb = max(run.peak_rss_mb, rss)
            run.peak_pss_mb = max(run.peak_pss_mb, pss)

    def kill_at_deadline() -> None:
        if not done.wait(timeout):
            run.timed_out = True
            _kill_group(child.pid)

    threads = [threading.Thread(target=sample_memory, daemon=True), threading.Thread(target=kill_at_deadline, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        assert child.stdout is not None
        for line in child.stdout:
            run.lines.append((time.time() - start, line.rstrip("\n")))
            if echo_prefix is not None:
                print(f"{echo_prefix}{line.rstrip()}", flush=True)
        run.returncode = child.wait()
    finally:
        run.wall_seconds = time.time() - start
        done.set()
        if child.poll() is None:
            _kill_group(child.pid)
            child.wait()
        else:
            _kill_group(child.pid)  # leftover workers of a crashed run
        for thread in threads:
            thread.join()
    return run


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
