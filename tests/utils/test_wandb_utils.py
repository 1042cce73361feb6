"""pysf.utils.wandb_utils: --with_wandb in offline mode (no network), TensorBoard scalars mirrored into the W&B run,
and the error without wandb."""

from __future__ import annotations

import builtins
import glob
import json
import os
import struct
import sys
import time
from typing import Dict, List

import pytest

from pysf.utils.attr_dict import AttrDict
from pysf.utils.wandb_utils import finish_wandb, init_wandb


def _cfg(tmp_path, **overrides) -> AttrDict:
    cfg = AttrDict(
        with_wandb=True, experiment="wandb_exp", env="CartPole-v1", train_dir=str(tmp_path / "train_dir"),
        wandb_user=None, wandb_project="pysf_tests", wandb_group=None, wandb_job_type="SF",
        wandb_tags=["tag_a", "tag_b"], wandb_dir=str(tmp_path / "wandb_dir"), learning_rate=1e-3,
    )
    cfg.update(overrides)
    return cfg


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """wandb offline, with every file it writes under tmp_path; its service process is stopped afterwards."""
    wandb = pytest.importorskip("wandb")
    pytest.importorskip("tensorboard", reason="W&B's TensorBoard mirroring needs the tensorboard package")
    pytest.importorskip("tensorboardX")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    monkeypatch.delenv("WANDB_DIR", raising=False)
    yield wandb
    if wandb.run is not None:
        wandb.run.finish()
    if wandb.patched["tensorboard"]:
        wandb.tensorboard.unpatch()
    wandb.teardown()


def _read_wandb_records(run_file: str) -> List[bytes]:
    """The records of a ``run-<id>.wandb`` file: a LevelDB-style log (7-byte header, 32 KiB blocks, each record
    chunk ``crc32 | length (2 bytes) | type (1 byte)``) of protobuf ``Record`` messages."""
    data = open(run_file, "rb").read()
    if data[:4] != b":W&B":
        pytest.skip(f"unknown .wandb file format in this wandb version ({data[:7]!r})")
    block, header = 32768, 7
    pos, records, partial = 7, [], b""
    while pos + header <= len(data):
        left_in_block = block - pos % block
        if left_in_block < header:  # block trailer padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + header])
        if kind == 0 and length == 0:  # zero padding to the end of the block
            pos += left_in_block
            continue
        payload = data[pos + header : pos + header + length]
        pos += header + length
        if kind == 1:  # full
            records.append(payload)
        elif kind == 2:  # first
            partial = payload
        elif kind == 3:  # middle
            partial += payload
        elif kind == 4:  # last
            records.append(partial + payload)
    return records


def _history_rows(run_dir: str) -> List[Dict[str, object]]:
    from wandb.proto import wandb_internal_pb2

    [run_file] = glob.glob(os.path.join(run_dir, "run-*.wandb"))
    rows = []
    for payload in _read_wandb_records(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
    return rows


def test_offline_run_mirrors_the_tensorboard_writer(tmp_path, offline_wandb):
    from tensorboardX import SummaryWriter

    wandb = offline_wandb
    cfg = _cfg(tmp_path)
    init_wandb(cfg)  # before the writer, as the runner must
    assert cfg.wandb_unique_id.startswith("wandb_exp_")
    run = wandb.run
    assert run is not None and run.settings.mode == "offline"
    assert (run.id, run.name, run.project, run.group, run.job_type) == (
        cfg.wandb_unique_id, cfg.wandb_unique_id, "pysf_tests", "CartPole-v1", "SF",
    )
    assert tuple(run.tags) == ("tag_a", "tag_b")
    assert run.config["learning_rate"] == 1e-3 and run.config["env"] == "CartPole-v1"
    run_dir = os.path.dirname(run.dir)
    assert run_dir.startswith(cfg.wandb_dir)

    # what the runner does: .summary/0 under the experiment folder, Sample Factory's tags, env steps as step
    writer = SummaryWriter(os.path.join(cfg.train_dir, cfg.experiment, ".summary", "0"), flush_secs=1)
    for i in range(5):
        env_steps = 1000 * (i + 1)
        writer.add_scalar("reward/reward", 10.0 * i, env_steps)
        writer.add_scalar("train/env_steps", env_steps, env_steps)
    writer.close()
    started = time.monotonic()
    finish_wandb(cfg)
    # W&B knows the writer's folder up front; left to guess it, wandb waits 10 s before mirroring (and finishing)
    assert time.monotonic() - started < 8.0
    assert wandb.run is None
    assert not wandb.patched["tensorboard"]

    rows = [r for r in _history_rows(run_dir) if "reward/reward" in r]
    assert [r["reward/reward"] for r in rows] == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert [r["train/env_steps"] for r in rows] == [1000, 2000, 3000, 4000, 5000]  # tags keep their names
    assert [r["global_step"] for r in rows] == [1000, 2000, 3000, 4000, 5000]


def test_saved_unique_id_resumes_the_same_run(tmp_path, offline_wandb):
    wandb = offline_wandb
    cfg = _cfg(tmp_path, wandb_unique_id="wandb_exp_20240101_000000_000000", wandb_group="my_group")
    init_wandb(cfg)
    assert cfg.wandb_unique_id == "wandb_exp_20240101_000000_000000"
    assert (wandb.run.id, wandb.run.group) == ("wandb_exp_20240101_000000_000000", "my_group")
    finish_wandb(cfg)
    assert wandb.run is None


def test_disabled_is_a_no_op_without_touching_wandb(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # importing wandb would now fail
    cfg = _cfg(tmp_path, with_wandb=False)
    init_wandb(cfg)
    finish_wandb(cfg)
    assert "wandb_unique_id" not in cfg
    assert not os.path.exists(cfg.wandb_dir)


def test_missing_wandb_says_what_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def import_without_wandb(name, *args, **kwargs):
        if name == "wandb" or name.startswith("wandb."):
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    monkeypatch.setattr(builtins, "__import__", import_without_wandb)
    with pytest.raises(ImportError, match=r"pip install wandb tensorboard.*pysf\[wandb\]"):
        init_wandb(_cfg(tmp_path))


def test_missing_tensorboard_says_what_to_install(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a, **k: None if name == "tensorboard" else real_find_spec(name, *a, **k)
    )
    cfg = _cfg(tmp_path)
    with pytest.raises(ImportError, match=r"needs the tensorboard package.*pip install tensorboard"):
        init_wandb(cfg)
    assert "wandb_unique_id" not in cfg  # nothing was started
