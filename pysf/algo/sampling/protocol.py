"""The pipe protocol between the native sampler and env worker processes (csrc/sampler/worker_protocol.h).

Fixed-size little-endian messages; only indices travel, the data stays in the shared trajectory buffers.
"""

from __future__ import annotations

import os
import struct
from typing import Tuple

# worker -> sampler: kind, local split, payload bytes (+ UTF-8 payload for ERROR)
WORKER_MESSAGE = struct.Struct("<iii")
READY, STEPPED, ERROR = 1, 2, 3
# sampler -> worker: kind, local split, block, step
SAMPLER_MESSAGE = struct.Struct("<iiqq")
ASSIGN, ACT, STOP = 1, 2, 3


def read_exact(fd: int, size: int) -> bytes:
    """Read exactly ``size`` bytes (``b""`` at end of file)."""
    chunks = []
    remaining = size
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            return b""
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive(fd: int) -> Tuple[int, int, int, int]:
    """The next sampler message ``(kind, split, block, step)``; STOP at end of file."""
    data = read_exact(fd, SAMPLER_MESSAGE.size)
    if not data:
        return STOP, -1, 0, 0
    return SAMPLER_MESSAGE.unpack(data)


def send(fd: int, kind: int, split: int) -> None:
    """Report READY / STEPPED for ``split``."""
    os.write(fd, WORKER_MESSAGE.pack(kind, split, 0))


def send_error(fd: int, message: str) -> None:
    """Report a failure (the sampler stops and raises it)."""
    payload = message.encode("utf-8", "replace")[:4000]  # one pipe write, below PIPE_BUF
    try:
        os.write(fd, WORKER_MESSAGE.pack(ERROR, -1, len(payload)) + payload)
    except OSError:
        pass  # the sampler is gone already
