"""Type aliases shared across pysf (Sample Factory's ``sample_factory.utils.typing``)."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Dict, Optional, Tuple, Union

from gymnasium import spaces

from pysf.utils.attr_dict import AttrDict

Config = Union[argparse.Namespace, AttrDict]
StatusCode = int
PolicyID = int
Device = str

# Multiprocessing queues and locks, or their in-process stand-ins in serial mode (hence Any).
MpQueue = Any
MpLock = Any

# An environment: a gymnasium.Env, or any object with its reset/step/close interface.
Env = Any
ObsSpace = spaces.Space
ActionSpace = spaces.Space

# make_env_func(full_env_name, cfg, env_config, render_mode) -> env
CreateEnvFunc = Callable[[str, Optional[Config], Optional[AttrDict], Optional[str]], Env]

# An action distribution object (pysf.algo.utils.action_distributions.get_action_distribution's result).
ActionDistribution = Any

# (policy_id, state_dict, device, policy_version)
InitModelData = Tuple[PolicyID, Dict[str, Any], Any, int]
