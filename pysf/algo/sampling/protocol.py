"""The channel between the native sampler and an env worker process (csrc/sampler/worker_mailbox.h).

Per worker: a shared-memory int64 mailbox tensor (one command slot and one report slot per split), two
eventfds that announce new messages to a reader that sleeps (``eventfd_write`` wakes without the
synchronous hint of pipe writes, which invites the scheduler to preempt the writer), and a lifeline socket
pair for death detection and the error text. The C++ side owns the layout; this module takes the constants
it needs from ``pysf._C.WorkerMailbox``. Only indices travel: observations, actions and rewards stay in the
shared trajectory buffers.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch

from pysf.algo.utils.multiprocessing_utils import InheritedFd


def _mailbox_class():
    from pysf import _C

    return _C.WorkerMailbox


def episode_record_dtype() -> np.dtype:
    """numpy dtype of one finished-episode record in the mailbox (field order from the C++ layout)."""
    types = {"env_index": "<i8", "raw_return": "<f8", "length": "<i8"}
    return np.dtype([(name, types[name]) for name in _mailbox_class().RECORD_FIELDS])


def max_error_report_bytes() -> int:
    """The longest error text a worker can send through its lifeline (``report_error``)."""
    return int(_mailbox_class().MAX_ERROR_REPORT_BYTES)


def abandon_if_starting(mailbox: torch.Tensor) -> bool:
    """After the sampler stopped: True if the worker never attached (it can be terminated right away)."""
    return _mailbox_class().abandon_if_starting(mailbox)


def allocate_mailbox(num_splits: int, block_rows: int) -> torch.Tensor:
    """A zeroed mailbox for one worker, in shared memory (pickled to the child like the buffers)."""
    words = _mailbox_class().words(num_splits, block_rows)
    return torch.zeros(words, dtype=torch.int64).share_memory_()


def new_eventfd() -> InheritedFd:
    """A non-blocking, close-on-exec eventfd (blocking happens in poll())."""
    return InheritedFd(os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK))


def new_lifeline() -> Tuple[InheritedFd, InheritedFd]:
    """``(sampler_end, worker_end)``: a connected, close-on-exec Unix socket pair."""
    sampler_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return InheritedFd(sampler_end.detach()), InheritedFd(worker_end.detach())


@dataclass
class WorkerEndpoint:
    """What a worker process receives to build its ``pysf._C.WorkerMailbox`` (picklable for spawn)."""

    mailbox: torch.Tensor
    commands_posted: InheritedFd  # eventfd the sampler signals when it posts a command while the worker waits
    wake_sampler: InheritedFd  # eventfd the worker signals when it posts a report while the sampler waits
    lifeline: InheritedFd  # the worker's end of the lifeline socket pair

    def open(self, num_splits: int, block_rows: int):
        """The worker's ``pysf._C.WorkerMailbox``; it takes over the three descriptors."""
        return _mailbox_class()(
            self.mailbox,
            num_splits,
            block_rows,
            self.commands_posted.detach(),
            self.wake_sampler.detach(),
            self.lifeline.detach(),
        )
