"""Weights & Biases logging for ``--with_wandb`` (Sample Factory's ``sample_factory.utils.wandb_utils``).

:func:`init_wandb` starts (or resumes) the experiment's W&B run with ``sync_tensorboard=True``: W&B then
mirrors every scalar the runner writes to its TensorBoard writer (``<experiment>/.summary/0``), so pysf has a
single place that logs summaries. Call it **before** that ``SummaryWriter`` is created (wandb hooks the writer
class when the run starts, and only writers created afterwards are mirrored) and before ``config.json`` is saved
(so that the run's ``wandb_unique_id`` is saved with it and a resumed experiment continues the same W&B run).
:func:`finish_wandb` closes the run once the writer has been flushed.

Flags (``pysf.cfg.cfg.add_wandb_args``): ``--wandb_project``, ``--wandb_user`` (entity), ``--wandb_group``
(default: the env name), ``--wandb_job_type``, ``--wandb_tags``, ``--wandb_dir`` (wandb writes its
``wandb/<run>`` folders inside it).

No internet: set ``WANDB_MODE=offline`` (wandb honours it); the run is written under ``--wandb_dir`` and can be
uploaded later with ``wandb sync <run folder>``. wandb is optional: ``pip install wandb tensorboard`` (pysf's
``wandb`` extra); W&B's TensorBoard mirroring needs the ``tensorboard`` package besides ``tensorboardX``.

Differences from Sample Factory, on purpose:

- W&B is told the writer's folder (its TensorBoard root directory), so tags keep their names (``reward/reward``)
  and W&B does not spend its 10 s of root-directory guessing when a run ends soon after it starts.
- No ``start_method`` setting: wandb 0.31 has none (it always runs its own service process).
"""

from __future__ import annotations

import importlib.util
import os
from datetime import datetime
from os.path import join
from typing import Any

from pysf.utils.typing import Config
from pysf.utils.utils import experiment_dir, log, retry, summaries_dir

__all__ = ["init_wandb", "finish_wandb", "WANDB_INSTALL_HINT", "TENSORBOARD_INSTALL_HINT"]

WANDB_INSTALL_HINT = (
    "--with_wandb needs the wandb package, which is not installed: `pip install wandb tensorboard` "
    "(or pysf's extra: `pip install pysf[wandb]`), or run without --with_wandb"
)

TENSORBOARD_INSTALL_HINT = (
    "--with_wandb mirrors pysf's TensorBoard summaries into W&B, which needs the tensorboard package (besides "
    "tensorboardX): `pip install tensorboard` (included in pysf's extra: `pip install pysf[wandb]`)"
)

# wandb.init can fail transiently (network, service start-up): retried as Sample Factory does.
_INIT_RETRIES = 3

# Scalars are plotted against env steps (the runner writes "train/env_steps" with every summary).
_ENV_STEPS_METRIC = "train/env_steps"
_SECTIONS_PLOTTED_AGAINST_ENV_STEPS = ("train", "perf", "len", "policy_stats", "reward", "stats")

# The policy whose TensorBoard folder (.summary/<policy>) W&B mirrors: pysf trains one policy.
_SUMMARY_POLICY_ID = 0


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError as exc:
        raise ImportError(WANDB_INSTALL_HINT) from exc
    return wandb


def _require_tensorboard() -> None:
    # wandb's TensorBoard mirroring imports tensorboard (not only tensorboardX); without it wandb.init fails,
    # and retrying would only repeat that.
    if importlib.util.find_spec("tensorboard") is None:
        raise ImportError(TENSORBOARD_INSTALL_HINT)


def _new_unique_id(cfg: Config) -> str:
    # <experiment>_<timestamp>: unique per start from scratch, and readable in the W&B project.
    return f'{cfg.experiment}_{datetime.now().strftime("%Y%m%d_%H%M%S_%f")}'


def _summary_dir(cfg: Config) -> str:
    """The folder of the runner's TensorBoard writer, ``<train_dir>/<experiment>/.summary/0``."""
    return join(summaries_dir(experiment_dir(cfg, mkdir=False), mkdir=False), str(_SUMMARY_POLICY_ID))


def _config_values(cfg: Config) -> dict:
    return dict(cfg) if isinstance(cfg, dict) else dict(vars(cfg))


def init_wandb(cfg: Config) -> None:
    """Start or resume the W&B run of this experiment when ``cfg.with_wandb`` (see the module docstring).

    Sets ``cfg.wandb_unique_id`` when the configuration has none yet (a resumed experiment's saved config has
    one, and its W&B run continues: ``resume="allow"``).

    Raises:
        ImportError: wandb or tensorboard is not installed (the message says what to install).
        Exception: whatever ``wandb.init`` raised on its last attempt (e.g. no API key while online: set
            ``WANDB_MODE=offline`` or run ``wandb login``).
    """
    if not cfg.with_wandb:
        log.debug("Weights and Biases integration disabled")
        return
    wandb = _import_wandb()
    _require_tensorboard()

    if "wandb_unique_id" not in cfg or not getattr(cfg, "wandb_unique_id", None):
        cfg.wandb_unique_id = _new_unique_id(cfg)
    wandb_unique_id = cfg.wandb_unique_id
    wandb_group = cfg.env if cfg.wandb_group is None else cfg.wandb_group
    wandb_dir = getattr(cfg, "wandb_dir", None)
    if wandb_dir:
        os.makedirs(wandb_dir, exist_ok=True)

    log.debug(
        "Weights and Biases integration enabled. Project: %s, user: %s, group: %s, unique_id: %s, mode: %s",
        cfg.wandb_project, cfg.wandb_user, wandb_group, wandb_unique_id, os.environ.get("WANDB_MODE", "default"),
    )

    # Tell W&B where the runner's writer will be (see the module docstring); the writer is mirrored either way.
    if not wandb.patched["tensorboard"]:
        wandb.tensorboard.patch(root_logdir=_summary_dir(cfg))

    @retry(_INIT_RETRIES, exceptions=(Exception,))
    def start_run() -> None:
        wandb.init(
            project=cfg.wandb_project,
            entity=cfg.wandb_user,
            sync_tensorboard=True,
            id=wandb_unique_id,
            name=wandb_unique_id,
            group=wandb_group,
            job_type=cfg.wandb_job_type,
            tags=cfg.wandb_tags,
            resume="allow",
            dir=wandb_dir or None,
        )

    try:
        start_run()
    except Exception as exc:
        log.error(
            "Could not initialize Weights & Biases: %s. Without network access set WANDB_MODE=offline "
            "(and upload the run later with `wandb sync`).", exc,
        )
        raise

    wandb.config.update(_config_values(cfg), allow_val_change=True)
    wandb.define_metric(_ENV_STEPS_METRIC)
    for section in _SECTIONS_PLOTTED_AGAINST_ENV_STEPS:
        wandb.define_metric(f"{section}/*", step_metric=_ENV_STEPS_METRIC)


def finish_wandb(cfg: Config) -> None:
    """Finish the W&B run started by :func:`init_wandb` (no-op without ``--with_wandb`` or without a run).

    Call it after the TensorBoard writer was flushed/closed, so that its last events are mirrored.
    """
    if not cfg.with_wandb:
        return
    wandb = _import_wandb()
    if wandb.run is not None:
        wandb.run.finish()
        # run.finish() returns once W&B's service has the run's last records, not once it has written them: the
        # run file (what `wandb sync` uploads) may still hold only its header. teardown waits for the service to
        # write everything and stops it (a later init_wandb starts a new one).
        wandb.teardown()
    # Restore TensorBoard's writer class, so that a later init_wandb in this process can pass its own folder.
    if wandb.patched["tensorboard"]:
        wandb.tensorboard.unpatch()
