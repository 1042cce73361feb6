"""The env worker's channel to the sampler (csrc/sampler/worker_mailbox.h, pysf/algo/sampling/protocol.py),
tested at the worker's end without a sampler: layout facts, wake-ups, the lifeline and start-up handshake."""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time

import numpy as np
import pytest
import torch

from pysf import _C
from pysf.algo.sampling import protocol

NUM_SPLITS, BLOCK_ROWS = 2, 5


class WorkerEndFixture:
    """A worker end over a fresh mailbox, with the sampler's ends of the fds kept here."""

    def __init__(self):
        self.mailbox = protocol.allocate_mailbox(NUM_SPLITS, BLOCK_ROWS)
        self.commands_posted = protocol.new_eventfd()
        self.wake_sampler = protocol.new_eventfd()
        self.sampler_lifeline, worker_lifeline = protocol.new_lifeline()
        # The worker end takes over duplicates; the originals stay with the "sampler" (this test).
        self.end = _C.WorkerMailbox(
            self.mailbox,
            NUM_SPLITS,
            BLOCK_ROWS,
            os.dup(self.commands_posted.fd),
            os.dup(self.wake_sampler.fd),
            worker_lifeline.detach(),
        )

    def close(self):
        for fd in (self.commands_posted, self.wake_sampler, self.sampler_lifeline):
            fd.close()


@pytest.fixture
def worker_end():
    fixture = WorkerEndFixture()
    yield fixture
    fixture.close()


def test_layout_comes_from_the_native_side():
    words = _C.WorkerMailbox.words(NUM_SPLITS, BLOCK_ROWS)
    mailbox = protocol.allocate_mailbox(NUM_SPLITS, BLOCK_ROWS)
    assert mailbox.dtype == torch.int64 and mailbox.numel() == words and mailbox.is_shared()
    assert bool((mailbox == 0).all()), "a mailbox starts zeroed: nothing posted"
    dtype = protocol.episode_record_dtype()
    assert dtype.names == tuple(_C.WorkerMailbox.RECORD_FIELDS)
    assert dtype.itemsize == 8 * len(dtype.names)  # one int64 word per field
    # Every split's slots fit, and the kinds are distinct.
    assert words >= 8 * (1 + 2 * NUM_SPLITS)
    kinds = {_C.WorkerMailbox.ASSIGN, _C.WorkerMailbox.ACT, _C.WorkerMailbox.STOP}
    assert len(kinds) == 3
    with pytest.raises(ValueError):
        _C.WorkerMailbox.words(0, BLOCK_ROWS)


def test_episode_records_are_views_into_the_mailbox(worker_end):
    end = worker_end.end
    records = end.episode_records(1).numpy().view(protocol.episode_record_dtype())[:, 0]
    assert records.shape == (BLOCK_ROWS,)
    records[0] = (3, 2.5, 7)
    raw = worker_end.mailbox.numpy()
    assert (raw == 3).any() and (raw == 7).any()
    assert 2.5 in raw.view(np.float64)
    # Records of different splits do not overlap.
    other = end.episode_records(0).numpy()
    assert not np.shares_memory(other, end.episode_records(1).numpy())
    with pytest.raises(IndexError):
        end.episode_records(NUM_SPLITS)


def test_a_report_is_announced_only_while_the_sampler_waits(worker_end):
    end = worker_end.end
    end.post_ready(0)  # the proxy does not wait: no wake-up syscall
    with pytest.raises(BlockingIOError):
        os.eventfd_read(worker_end.wake_sampler.fd)
    with pytest.raises(IndexError):
        end.post_stepped(0, BLOCK_ROWS + 1)  # more episodes than envs
    with pytest.raises(IndexError):
        end.post_ready(NUM_SPLITS)


def test_wait_returns_stop_when_the_sampler_hangs_up(worker_end):
    result = {}

    def waiter():
        result["command"] = worker_end.end.wait()  # releases the GIL while it sleeps in poll()

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive(), "nothing was posted: wait() must block"
    start = time.monotonic()
    worker_end.sampler_lifeline.close()  # what the kernel does when the sampler's process dies
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - start < 1.0
    assert result["command"][0] == _C.WorkerMailbox.STOP


def test_error_text_travels_through_the_lifeline(worker_end):
    worker_end.end.report_error("env 'x' (worker 3, env_id 7) returned a non-finite reward nan")
    data = os.read(worker_end.sampler_lifeline.fd, 8192)
    assert data.decode() == "env 'x' (worker 3, env_id 7) returned a non-finite reward nan"
    worker_end.end.report_error("é" * 5000)  # truncated to one write of at most 4000 bytes
    assert len(os.read(worker_end.sampler_lifeline.fd, 8192)) == 4000


def test_start_up_handshake_attach_or_abandon():
    first = WorkerEndFixture()
    try:
        assert first.end.attach()
        assert not _C.WorkerMailbox.abandon_if_starting(first.mailbox), "an attached worker is stopped normally"
    finally:
        first.close()
    second = WorkerEndFixture()
    try:
        assert _C.WorkerMailbox.abandon_if_starting(second.mailbox)
        assert not second.end.attach(), "an abandoned worker must exit instead of creating envs"
    finally:
        second.close()
    with pytest.raises(ValueError):
        _C.WorkerMailbox.abandon_if_starting(torch.zeros(3, dtype=torch.float32))


def _write_to_inherited(fd: protocol.InheritedFd, value: int) -> None:
    os.eventfd_write(fd.detach(), value)


def test_inherited_fd_reaches_a_spawned_child():
    efd = protocol.new_eventfd()
    try:
        process = multiprocessing.get_context("spawn").Process(target=_write_to_inherited, args=(efd, 41))
        process.start()
        process.join(timeout=60)
        assert process.exitcode == 0
        assert os.eventfd_read(efd.fd) == 41
    finally:
        efd.close()


def test_lifeline_ends_are_a_connected_socket_pair():
    sampler_end, worker_end = protocol.new_lifeline()
    try:
        assert not os.get_inheritable(sampler_end.fd) and not os.get_inheritable(worker_end.fd)
        os.write(worker_end.fd, b"x")
        assert os.read(sampler_end.fd, 1) == b"x"
        worker_end.close()
        assert os.read(sampler_end.fd, 1) == b""  # hang-up reads as end of file
        with socket.socket(fileno=os.dup(sampler_end.fd)) as sock:
            assert sock.type == socket.SOCK_STREAM
    finally:
        sampler_end.close()
        worker_end.close()
