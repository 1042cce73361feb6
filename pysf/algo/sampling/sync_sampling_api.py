"""Standalone sampling without a learner (Sample Factory's ``SyncSamplingAPI``): evaluation, data collection,
tests, benchmarks.

    sampler = SyncSamplingAPI(cfg, env_info)   # Sample Factory's constructor
    sampler.start()                            # or start({0: (0, state_dict, device, policy_version)})
    while ...:
        trajectories = sampler.get_trajectories_sync()   # TensorDict [N, T(+1), ...]; None once stopped
    status = sampler.stop()

Sample Factory hands out one trajectory per call; pysf hands out a block of trajectories (one split's envs, or
``num_blocks`` blocks) per call, with the same layout, so ``rl_utils.samples_per_trajectory`` counts them right.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional

from pysf.algo.inference.policy_backends import make_inference_policy
from pysf.algo.sampling.sampler import EpisodeStats, Sampler
from pysf.algo.utils.env_info import EnvInfo, obtain_env_info
from pysf.algo.utils.misc import ExperimentStatus
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.model.actor_critic import ActorCritic, create_actor_critic
from pysf.model.model_utils import get_rnn_size
from pysf.utils.typing import Config, InitModelData, PolicyID, StatusCode
from pysf.utils.utils import setup_logging

# How long get_trajectories_sync waits per attempt before checking again whether sampling stopped or failed.
_POLL_SECONDS = 1.0


class SyncSamplingAPI:
    """Start sampling, take batches of completed trajectories, stop.

    ``cfg`` and ``env_info`` as in Sample Factory (``env_info=None``: obtained from ``cfg``). Sample Factory's
    ``buffer_mgr`` / ``param_servers`` are its own shared-memory internals; pysf's native sampler owns its buffers,
    so only None is accepted. pysf additions (keywords): ``actor_critic`` (the policy; default: built with the
    global model factory, weights as in ``start``), ``deterministic`` (argmax actions), ``num_blocks`` (the
    sampler's block count) and ``serial_inference_order`` (reproducible inference order, for tests). The policy
    runs with ``--inference_backend``.
    """

    def __init__(
        self,
        cfg: Config,
        env_info: Optional[EnvInfo] = None,
        buffer_mgr: None = None,
        param_servers: None = None,
        *,
        actor_critic: Optional[ActorCritic] = None,
        deterministic: bool = False,
        num_blocks: Optional[int] = None,
        serial_inference_order: bool = False,
    ):
        if buffer_mgr is not None or param_servers is not None:
            raise NotImplementedError(
                "SyncSamplingAPI(buffer_mgr=..., param_servers=...): these are Sample Factory's shared-memory internals; "
                "pysf's sampler owns its buffers. Pass the policy as actor_critic=..., or its weights to start()."
            )
        setup_logging()
        self.cfg = cfg
        self.env_info = env_info if env_info is not None else obtain_env_info(cfg)
        from pysf.cfg.verify import not_yet_supported_errors

        problems = not_yet_supported_errors(cfg)
        if problems:
            raise ValueError("SyncSamplingAPI cannot sample this configuration:\n- " + "\n- ".join(problems))
        if actor_critic is None:
            actor_critic = create_actor_critic(cfg, self.env_info.obs_space, self.env_info.action_space)
        self.actor_critic = actor_critic
        rnn_state_size = get_rnn_size(cfg)
        self.policy = make_inference_policy(
            actor_critic, self.env_info.obs_space, rnn_state_size, backend=cfg.inference_backend
        )
        self.sampler = Sampler(
            cfg,
            self.env_info,
            self.policy,
            rnn_state_size,
            num_blocks=num_blocks,
            deterministic_actions=deterministic,
            serial_inference_order=serial_inference_order,
        )
        self._stopped = False

    def start(self, init_model_data: Optional[Dict[PolicyID, InitModelData]] = None) -> None:
        """Start env workers and inference; ``init_model_data``: Sample Factory's
        ``{policy_id: (policy_id, state_dict, device, policy_version)}`` to sample with those weights."""
        if init_model_data is not None:
            _, state_dict, _device, policy_version = init_model_data[0]
            self.actor_critic.load_state_dict(state_dict)
            self.policy.update_weights(self.actor_critic, int(policy_version))
        self.sampler.start()

    def get_trajectories_sync(self, num_blocks: Optional[int] = None, timeout: Optional[float] = None) -> Optional[TensorDict]:
        """A copy of ``num_blocks`` completed blocks (default: one per split), which are then freed.

        Waits until they are there (or ``timeout`` seconds: then ``TimeoutError``); None once ``stop()`` was called.
        Raises RuntimeError if sampling failed (e.g. an env raised).
        """
        self.sampler.check()  # a failed worker is reported even while healthy ones still deliver blocks
        wanted = self.sampler.num_splits if num_blocks is None else num_blocks
        deadline = None if timeout is None else time.monotonic() + timeout
        blocks: List[int] = []
        while len(blocks) < wanted and not self._stopped:
            wait = _POLL_SECONDS if deadline is None else min(_POLL_SECONDS, deadline - time.monotonic())
            if wait <= 0:
                self.sampler.release(blocks)
                raise TimeoutError(f"got {len(blocks)} of {wanted} trajectory blocks within {timeout} s")
            blocks += self.sampler.get_trajectories(wanted - len(blocks), wait)
        if self._stopped:
            return None
        try:
            return self.sampler.copy_blocks(blocks)
        finally:
            self.sampler.release(blocks)

    def episode_stats(self) -> List[EpisodeStats]:
        """Episodes finished since the last call."""
        return self.sampler.episode_stats()

    def stop(self) -> StatusCode:
        """Stop and join everything; returns SUCCESS, or FAILURE if sampling had failed."""
        self._stopped = True
        failed = self.sampler.error is not None
        self.sampler.stop()
        return ExperimentStatus.FAILURE if failed else ExperimentStatus.SUCCESS

    def __enter__(self) -> "SyncSamplingAPI":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
