"""Standalone sampling without a learner (Sample Factory's ``SyncSamplingAPI``): evaluation, tests, benchmarks.

    with SyncSamplingAPI(cfg, env_info) as sampling:
        batch = sampling.get_trajectories_sync()   # TensorDict [trajectories, T(+1), ...]
        stats = sampling.episode_stats()
"""

from __future__ import annotations

from typing import List, Optional

from pysf.algo.inference.policy_backends import make_inference_policy
from pysf.algo.sampling.sampler import EpisodeStats, Sampler
from pysf.algo.utils.env_info import EnvInfo, obtain_env_info
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.model.actor_critic import ActorCritic, create_actor_critic
from pysf.model.model_utils import get_rnn_size
from pysf.utils.typing import Config


class SyncSamplingAPI:
    """Start sampling, take batches of completed trajectories, stop.

    The policy is ``actor_critic`` (built from the global model factory when None), run with
    ``--inference_backend``. ``deterministic`` selects argmax actions. Each ``get_trajectories_sync`` call
    returns a copy of ``num_blocks`` completed blocks (default: one per split) and frees them.
    """

    def __init__(
        self,
        cfg: Config,
        env_info: Optional[EnvInfo] = None,
        actor_critic: Optional[ActorCritic] = None,
        deterministic: bool = False,
        num_blocks: Optional[int] = None,
        serial_inference_order: bool = False,
    ):
        self.cfg = cfg
        self.env_info = env_info if env_info is not None else obtain_env_info(cfg)
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

    def start(self) -> None:
        """Start env workers and inference."""
        self.sampler.start()

    def get_trajectories_sync(self, num_blocks: Optional[int] = None, timeout: float = 120.0) -> TensorDict:
        """A copy of ``num_blocks`` completed blocks (default: one per split), which are then freed."""
        wanted = self.sampler.num_splits if num_blocks is None else num_blocks
        blocks = self.sampler.get_trajectories(wanted, timeout)
        if len(blocks) < wanted:
            self.sampler.release(blocks)
            raise TimeoutError(f"got {len(blocks)} of {wanted} trajectory blocks within {timeout} s")
        try:
            return self.sampler.copy_blocks(blocks)
        finally:
            self.sampler.release(blocks)

    def episode_stats(self) -> List[EpisodeStats]:
        """Episodes finished since the last call."""
        return self.sampler.episode_stats()

    def stop(self) -> None:
        """Stop and join everything."""
        self.sampler.stop()

    def __enter__(self) -> "SyncSamplingAPI":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
