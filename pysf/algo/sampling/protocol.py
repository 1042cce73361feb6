"""The pipe protocol between the native sampler and env worker processes (csrc/sampler/worker_protocol.h).

Fixed-size little-endian messages; only indices travel, the data stays in the shared trajectory buffers.
"""

from __future__ import annotations

import os
import struct
from typing import List, Tuple

import numpy as np

# worker -> sampler: kind, local split, payload bytes; payload: finished episodes for STEPPED, UTF-8 for ERROR
WORKER_MESSAGE = struct.Struct("<iii")
READY, STEPPED, ERROR = 1, 2, 3
# one finished episode in a STEPPED payload: env index within the split, raw return, length
EPISODE = np.dtype([("env_index", "<i4"), ("reward", "<f4"), ("length", "<i4")])
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


def pack_episodes(episodes: List[Tuple[int, float, int]]) -> bytes:
    """Binary payload for ``(env_index, reward, length)`` records."""
    if not episodes:
        return b""
    return np.array(episodes, dtype=EPISODE).tobytes()


def send(fd: int, kind: int, split: int, payload: bytes = b"") -> None:
    """Report READY / STEPPED for ``split`` (with finished episodes as payload)."""
    message = WORKER_MESSAGE.pack(kind, split, len(payload)) + payload
    written = os.write(fd, message)
    while written < len(message):  # only when a payload exceeds the pipe's atomic size
        written += os.write(fd, message[written:])


def send_error(fd: int, message: str) -> None:
    """Report a failure (the sampler stops and raises it)."""
    payload = message.encode("utf-8", "replace")[:4000]  # one pipe write, below PIPE_BUF
    try:
        os.write(fd, WORKER_MESSAGE.pack(ERROR, -1, len(payload)) + payload)
    except OSError:
        pass  # the sampler is gone already
