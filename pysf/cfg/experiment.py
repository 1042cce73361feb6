"""The experiment folder ``<train_dir>/<experiment>/``: restart behavior and the saved ``config.json``.

What the runner does with it, in order::

    cfg = prepare_experiment_dir(cfg)      # --restart_behavior; on resume, the saved config (+ explicit CLI flags)
    env_info = obtain_env_info(cfg)
    cfg = preprocess_cfg(cfg, env_info)    # raises ValueError on an invalid configuration
    save_config(cfg)                       # config.json, written only once the configuration was verified

``--restart_behavior`` when the folder already exists (as in Sample Factory):

- ``resume`` (default): keep the folder (checkpoints, summaries, logs) and reload its ``config.json``; only the
  flags passed explicitly on this command line override the saved values (see
  :func:`pysf.cfg.arguments.load_from_checkpoint`);
- ``restart``: move the old folder aside to ``<dir>_old0001`` (``_old0002``, ... if taken) and start from scratch;
- ``overwrite``: delete the old folder and start from scratch.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from typing import Any, Dict, List, Tuple

from pysf.cfg.arguments import cfg_dict, maybe_load_from_checkpoint, read_config_file
from pysf.utils.attr_dict import AttrDict
from pysf.utils.typing import Config
from pysf.utils.utils import (
    CONFIG_FILENAME,
    LEGACY_CONFIG_FILENAME,
    cfg_file,
    cfg_file_old,
    ensure_dir_exists,
    experiment_dir,
    log,
)

__all__ = [
    "CONFIG_FILENAME",
    "LEGACY_CONFIG_FILENAME",
    "RESTART_BEHAVIORS",
    "experiment_dir",
    "cfg_file",
    "cfg_file_old",
    "save_config",
    "load_config",
    "old_experiment_dir",
    "prepare_experiment_dir",
]

RESTART_BEHAVIORS: Tuple[str, ...] = ("resume", "restart", "overwrite")


def save_config(cfg: Config) -> str:
    """Write every entry of ``cfg`` to ``<experiment_dir>/config.json`` (creating the folder if needed).

    The write is atomic: the JSON goes to a temporary file in the same folder, which then replaces
    ``config.json`` with ``os.replace``. A failure (e.g. a value JSON cannot represent) leaves any previous
    ``config.json`` untouched and no temporary file behind.

    Returns:
        The path of ``config.json``.

    Raises:
        TypeError: an entry of ``cfg`` is not JSON-serializable (the message names the entries).
    """
    params = dict(cfg_dict(cfg))
    directory = experiment_dir(cfg, mkdir=True)
    filename = os.path.join(directory, CONFIG_FILENAME)

    fd, tmp_filename = tempfile.mkstemp(prefix=f".{CONFIG_FILENAME}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as json_file:
            try:
                json.dump(params, json_file, indent=2)
            except (TypeError, ValueError) as exc:
                bad_keys = _unserializable_keys(params)
                raise TypeError(
                    f"Cannot save the configuration to {filename}: entries {bad_keys} are not JSON-serializable "
                    f"({exc}). Configuration values must be None, bool, int, float, str, or lists/dicts of these."
                ) from exc
            json_file.flush()
            os.fsync(json_file.fileno())
        os.replace(tmp_filename, filename)
    except BaseException:
        if os.path.exists(tmp_filename):
            os.remove(tmp_filename)
        raise
    return filename


def load_config(cfg: Config) -> AttrDict:
    """The saved ``config.json`` of the experiment ``cfg`` points to, as is (no command-line overrides; see
    :func:`pysf.cfg.arguments.load_from_checkpoint` for those).

    Raises:
        FileNotFoundError: the experiment has no ``config.json``.
        ValueError: the file is not a JSON object.
    """
    return read_config_file(cfg_file(cfg, mkdir=False))


def old_experiment_dir(exp_dir: str) -> str:
    """The first free ``<exp_dir>_oldNNNN`` name (``_old0001``, ``_old0002``, ...) to move an old folder to."""
    attempt = 1
    while os.path.lexists(f"{exp_dir}_old{attempt:04d}"):
        attempt += 1
    return f"{exp_dir}_old{attempt:04d}"


def prepare_experiment_dir(cfg: Config) -> AttrDict:
    """Apply ``--restart_behavior`` to the experiment folder and return the configuration to train with.

    - new experiment: the configuration is ``cfg``;
    - existing folder, ``resume``: the saved configuration with this run's explicit command-line flags on top
      (:func:`pysf.cfg.arguments.maybe_load_from_checkpoint`; a folder without ``config.json`` starts from
      ``cfg``, a legacy ``cfg.json`` is renamed to ``config.json``);
    - existing folder, ``restart``: the folder is moved to :func:`old_experiment_dir`, the configuration is ``cfg``;
    - existing folder, ``overwrite``: the folder is deleted, the configuration is ``cfg``.

    The folder exists afterwards. ``config.json`` is not written here: call :func:`save_config` once the
    configuration has been verified, so that an invalid configuration is never saved (it would be reloaded on the
    next resume).

    Returns:
        A new ``AttrDict`` in every case (``cfg`` itself is not modified).

    Raises:
        ValueError: unknown ``--restart_behavior``, an experiment name that does not denote a folder strictly
            inside ``--train_dir`` (empty, absolute, ``..``), or a path that exists but is not a folder.
    """
    behavior = getattr(cfg, "restart_behavior", "resume")
    if behavior not in RESTART_BEHAVIORS:
        raise ValueError(f"Unknown --restart_behavior={behavior!r}: use one of {', '.join(RESTART_BEHAVIORS)}.")
    _check_experiment_name(cfg.experiment)

    exp_dir = experiment_dir(cfg, mkdir=False)
    if os.path.lexists(exp_dir) and not os.path.isdir(exp_dir):
        raise ValueError(
            f"{exp_dir} exists but is not a folder. Remove it, or choose another --experiment or --train_dir."
        )

    if not os.path.isdir(exp_dir):
        result = _copy_cfg(cfg)
    elif behavior == "resume":
        log.debug("Resuming existing experiment from %s", exp_dir)
        result = maybe_load_from_checkpoint(cfg)
    elif behavior == "restart":
        old_dir = old_experiment_dir(exp_dir)
        log.info("Experiment folder %s exists: moving it to %s and starting from scratch", exp_dir, old_dir)
        shutil.move(exp_dir, old_dir)
        result = _copy_cfg(cfg)
    else:  # overwrite
        log.info("Experiment folder %s exists: deleting it and starting from scratch", exp_dir)
        shutil.rmtree(exp_dir)
        result = _copy_cfg(cfg)

    ensure_dir_exists(exp_dir)
    return result


# --------------------------------------------------------------------------------------------------------------
# Private helpers
# --------------------------------------------------------------------------------------------------------------


def _copy_cfg(cfg: Config) -> AttrDict:
    """An independent ``AttrDict`` copy of ``cfg`` (lists and dicts are copied too)."""
    return AttrDict({key: copy.deepcopy(value) for key, value in cfg_dict(cfg).items()})


def _unserializable_keys(params: Dict[str, Any]) -> List[str]:
    """The keys whose values ``json`` cannot write."""
    bad_keys = []
    for key, value in params.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            bad_keys.append(key)
    return bad_keys


def _check_experiment_name(experiment: Any) -> None:
    """``--experiment`` must denote a folder strictly inside ``--train_dir``: ``overwrite``/``restart`` would
    otherwise delete or move ``--train_dir`` itself or something outside it."""
    name = str(experiment) if experiment is not None else ""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or os.path.isabs(name) or ".." in parts:
        raise ValueError(
            f"--experiment={experiment!r} must be a folder name inside --train_dir (not empty, not an absolute path, "
            f"without '..'), e.g. --experiment=my_experiment."
        )
