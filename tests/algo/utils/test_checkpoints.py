"""pysf.algo.utils.checkpoints: atomic writes, pruning that never deletes the newest, unreadable files kept aside."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
import torch

from pysf.algo.utils.checkpoints import (
    CORRUPT_SUFFIX,
    UnreadableCheckpointsError,
    checkpoints,
    corrupt_checkpoints,
    load_latest_checkpoint,
    save_checkpoint,
)
from pysf.utils.atomic_files import FileWriteError


def state(train_step: int, env_steps: int) -> dict:
    return {"train_step": train_step, "env_steps": env_steps, "model": {"w": torch.full((3,), float(train_step))}}


def test_pruning_keeps_the_newest_written_even_below_a_bogus_higher_step(tmp_path):
    directory = str(tmp_path)
    bogus = tmp_path / "checkpoint_999999999_99999999.pth"
    torch.save(state(999, 999), bogus)
    os.utime(bogus, (time.time() - 100, time.time() - 100))  # older by modification time
    first = save_checkpoint(state(1, 10), directory, keep=2)
    second = save_checkpoint(state(2, 20), directory, keep=2)
    assert set(checkpoints(directory)) == {first, second}  # the bogus file, oldest by mtime, went first
    third = save_checkpoint(state(3, 30), directory, keep=1)
    assert checkpoints(directory) == [third]


def test_best_checkpoints_keep_only_the_newest_best(tmp_path):
    directory = str(tmp_path)
    latest = save_checkpoint(state(1, 10), directory, keep=2)
    save_checkpoint(state(1, 10), directory, keep=1, name_prefix="best", suffix="_reward_1.000")
    best = save_checkpoint(state(2, 20), directory, keep=1, name_prefix="best", suffix="_reward_2.000")
    assert checkpoints(directory, "best") == [best] and checkpoints(directory) == [latest]


def test_unreadable_files_are_moved_aside_and_the_previous_one_loads(tmp_path, caplog):
    directory = str(tmp_path)
    good = save_checkpoint(state(1, 10), directory, keep=None)
    truncated = save_checkpoint(state(2, 20), directory, keep=None)
    Path(truncated).write_bytes(Path(truncated).read_bytes()[:50])
    loaded = load_latest_checkpoint(directory)
    assert loaded["_path"] == good and torch.equal(loaded["model"]["w"], torch.ones(3))
    assert "is corrupt or incomplete" in caplog.text and "moved to" in caplog.text
    assert checkpoints(directory) == [good] and corrupt_checkpoints(directory) == [truncated + CORRUPT_SUFFIX]


def test_nothing_readable_is_an_error_naming_the_files_and_the_way_out(tmp_path):
    directory = str(tmp_path)
    assert load_latest_checkpoint(directory) is None  # no checkpoint at all: a new run
    latest = save_checkpoint(state(1, 10), directory, keep=None)
    best = save_checkpoint(state(1, 10), directory, keep=1, name_prefix="best", suffix="_reward_1.000")
    Path(best).write_bytes(b"garbage")
    with pytest.raises(UnreadableCheckpointsError) as info:
        load_latest_checkpoint(directory, kind="best")
    message = str(info.value)
    assert os.path.basename(best) + CORRUPT_SUFFIX in message
    assert f"{os.path.basename(latest)}: use --load_checkpoint_kind=latest" in message
    assert "--restart_behavior=restart" in message
    # Still an error the next time (the files were moved aside, not forgotten), and the regular ones load.
    with pytest.raises(UnreadableCheckpointsError):
        load_latest_checkpoint(directory, kind="best")
    assert load_latest_checkpoint(directory)["_path"] == latest


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    directory = str(tmp_path)
    previous = save_checkpoint(state(1, 10), directory, keep=1)

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(FileWriteError) as info:
        save_checkpoint(state(2, 20), directory, keep=1)
    assert str(info.value).startswith("No space left on device (the disk or quota is full) while writing checkpoint ")
    assert sorted(os.listdir(directory)) == [os.path.basename(previous)]
