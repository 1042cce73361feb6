"""pysf.utils.typing has Sample Factory's aliases, so annotations of user code written for it resolve."""

from __future__ import annotations

import argparse
import typing

from gymnasium import spaces

import pysf.utils.typing as pysf_typing
from pysf.utils.attr_dict import AttrDict

SAMPLE_FACTORY_ALIASES = [
    "Config",
    "StatusCode",
    "PolicyID",
    "Device",
    "MpQueue",
    "MpLock",
    "Env",
    "ObsSpace",
    "ActionSpace",
    "CreateEnvFunc",
    "ActionDistribution",
    "InitModelData",
]


def test_all_sample_factory_aliases_exist():
    missing = [name for name in SAMPLE_FACTORY_ALIASES if not hasattr(pysf_typing, name)]
    assert missing == []


def test_alias_values():
    assert set(typing.get_args(pysf_typing.Config)) == {argparse.Namespace, AttrDict}
    assert pysf_typing.PolicyID is int and pysf_typing.StatusCode is int and pysf_typing.Device is str
    for name in ("MpQueue", "MpLock", "Env", "ActionDistribution"):
        assert getattr(pysf_typing, name) is typing.Any, name
    assert issubclass(spaces.Dict, pysf_typing.ObsSpace) and pysf_typing.ActionSpace is spaces.Space
    # CreateEnvFunc: make_env_func(full_env_name, cfg, env_config, render_mode) -> Env
    args, ret = typing.get_args(pysf_typing.CreateEnvFunc)
    assert len(args) == 4 and args[0] is str and ret is typing.Any


def test_annotations_of_user_code_resolve():
    from pysf.utils.typing import ActionDistribution, Config, Env, MpLock, MpQueue, ObsSpace, PolicyID

    def user_fn(cfg: Config, env: Env, q: MpQueue, lock: MpLock, obs: ObsSpace, p: PolicyID) -> ActionDistribution:
        return None

    hints = typing.get_type_hints(user_fn, globalns={**vars(pysf_typing)})
    assert hints["env"] is typing.Any and hints["p"] is int
