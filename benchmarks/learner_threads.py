"""Several learners: one after another in one thread (what the runner does) against one thread each, side by side.

    python -m benchmarks.learner_threads [--rounds 6] [--policies 2] [--torch_threads 2]

Each learner has the native ConnectFour-v0 self-play settings (pysf/envs/native_defaults.py: a 256-256 MLP, 4096
samples per batch, 2 epochs of 2 minibatches) and trains on synthetic batches of that layout. A round trains
every learner once on its own batch; the rounds alternate between the two ways, and the table gives each way's
training iterations per second (all learners together). On a machine with few cores the learners share
PyTorch's intra-op threads either way, so threads pay off only where the cores are not busy already.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Callable, Dict, List, Optional

import torch
from gymnasium import spaces

from pysf.algo.learning.learner import Learner
from pysf.algo.utils.env_info import EnvInfo
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.cfg.arguments import default_cfg
from pysf.envs.connect_four import COLUMNS, OBSERVATION_SIZE
from pysf.envs.native_defaults import native_env_defaults

WAYS = ("one after another", "one thread each")


def board_game_learners(count: int) -> List[Learner]:
    """``count`` learners with ConnectFour-v0's defaults."""
    cfg = default_cfg(env="ConnectFour-v0")
    for key, value in native_env_defaults("ConnectFour-v0").items():
        setattr(cfg, key, value)
    env_info = EnvInfo(obs_space=spaces.Dict(obs=spaces.Box(0.0, 1.0, (OBSERVATION_SIZE,))),
                       action_space=spaces.Discrete(COLUMNS))
    return [Learner(cfg, env_info, policy_id=policy_id) for policy_id in range(count)]


def synthetic_batch(learner: Learner, seed: int) -> TensorDict:
    """One training iteration's trajectories for ``learner``, in the sampler's layout, with random content."""
    cfg = learner.cfg
    trajectories = int(cfg.batch_size) * int(cfg.num_batches_per_epoch) // int(cfg.rollout)
    steps = int(cfg.rollout)
    g = torch.Generator().manual_seed(seed)
    return TensorDict(
        obs=TensorDict(obs=(torch.rand(trajectories, steps + 1, OBSERVATION_SIZE, generator=g) < 0.3).float()),
        rnn_states=torch.zeros(trajectories, steps + 1, 1),
        actions=torch.randint(0, COLUMNS, (trajectories, steps, 1), generator=g).float(),
        action_logits=torch.randn(trajectories, steps, COLUMNS, generator=g),
        log_prob_actions=torch.full((trajectories, steps), -1.9),
        values=torch.randn(trajectories, steps + 1, generator=g),
        rewards=torch.randint(-1, 2, (trajectories, steps), generator=g).float() * 0.1,
        dones=torch.rand(trajectories, steps, generator=g) < 0.05,
        time_outs=torch.zeros(trajectories, steps, dtype=torch.bool),
        policy_version=torch.full((trajectories, steps), learner.train_step, dtype=torch.int32),
        policy_id=torch.full((trajectories, steps), learner.policy_id, dtype=torch.int32),
    )


def train_round(learners: List[Learner], batches: List[TensorDict], threaded: bool) -> float:
    """Seconds for every learner to train once on its batch (copies: training completes a batch in place)."""
    work = [(learner, batch.apply(lambda t: t.clone())) for learner, batch in zip(learners, batches)]
    for learner, batch in work:  # the policy versions follow the learners, so no sample is too old
        batch["policy_version"].fill_(learner.train_step)
    start = time.perf_counter()
    if threaded:
        threads = [threading.Thread(target=learner.train, args=(batch,)) for learner, batch in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for learner, batch in work:
            learner.train(batch)
    return time.perf_counter() - start


def measure(rounds: int, policies: int, progress: Callable[[str], None] = print) -> Dict[str, List[float]]:
    """Iterations per second (all learners) per round, for each way, the ways alternating."""
    learners = board_game_learners(policies)
    batches = [synthetic_batch(learner, seed) for seed, learner in enumerate(learners)]
    train_round(learners, batches, threaded=False)  # warm-up: allocations, first-call costs
    results: Dict[str, List[float]] = {way: [] for way in WAYS}
    for index in range(rounds):
        for way in WAYS if index % 2 == 0 else reversed(WAYS):
            seconds = train_round(learners, batches, threaded=way == WAYS[1])
            results[way].append(policies / seconds)
            progress(f"round {index + 1}/{rounds}: {way}: {policies / seconds:.2f} iterations/s")
    return results


def table(results: Dict[str, List[float]], policies: int, torch_threads: int) -> str:
    """The Markdown table: each way's iterations per second (per round and median) and its ratio."""
    base = statistics.median(results[WAYS[0]])
    lines = [f"{policies} learners, torch threads {torch_threads}", "",
             "| way | iterations/s per round | median | ratio |", "|---|---|---|---|"]
    for way in WAYS:
        median = statistics.median(results[way])
        rounds = " / ".join(f"{value:.2f}" for value in results[way])
        lines.append(f"| {way} | {rounds} | {median:.2f} | {median / base:.2f} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--policies", type=int, default=2)
    parser.add_argument("--torch_threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    print(table(measure(args.rounds, args.policies), args.policies, args.torch_threads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
