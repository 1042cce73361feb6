"""Support for tests that check a native call releases the GIL."""

from __future__ import annotations

import threading
import time
from typing import Tuple


def count_while_alive(thread: threading.Thread) -> Tuple[int, float]:
    """Starts `thread`, then spins counting loop iterations until it ends; returns (count, seconds)."""
    count = 0
    start = time.perf_counter()
    thread.start()
    while thread.is_alive():
        count += 1
    elapsed = time.perf_counter() - start
    thread.join()
    return count, elapsed
