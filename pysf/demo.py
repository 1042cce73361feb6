"""The foundation demo: build the default model, compile it, run batched inference in C++.

``python -m pysf.demo`` (``make run``) builds Sample Factory's default actor-critic for CartPole-v1's
spaces, compiles it with TorchScript, verifies it against the eager model, hands it to pysf's native
policy, runs batches of 1, 64 and 1024 observations from C++ (GIL released), publishes new weights and
prints what happened at each step.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

import torch
from gymnasium import spaces

from pysf.algo.inference.compile import compile_inference_module
from pysf.algo.inference.policy_backends import NativePolicy
from pysf.cfg.arguments import default_cfg
from pysf.model.actor_critic import create_actor_critic
from pysf.model.model_utils import get_rnn_size


def main(argv: Optional[List[str]] = None) -> int:
    """Run the demo; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=50, help="timed forwards per batch size")
    parser.add_argument("--batch_sizes", type=int, nargs="*", default=[1, 64, 1024])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one intra-op thread: the rollout engine runs many small forwards in parallel

    cfg = default_cfg(env="CartPole-v1", experiment="demo")
    obs_space = spaces.Dict(obs=spaces.Box(-4.8, 4.8, (4,), dtype="float32"))
    action_space = spaces.Discrete(2)
    rnn_state_size = get_rnn_size(cfg)

    start = time.perf_counter()
    actor_critic = create_actor_critic(cfg, obs_space, action_space)
    num_params = sum(p.numel() for p in actor_critic.parameters())
    print(
        f"[1/4] built {type(actor_critic).__name__} for CartPole-v1 spaces (obs {obs_space['obs'].shape}, "
        f"{action_space}): encoder MLP {cfg.encoder_mlp_layers}, {cfg.rnn_type.upper()} {cfg.rnn_size}, "
        f"{num_params:,} parameters ({time.perf_counter() - start:.2f} s)"
    )

    start = time.perf_counter()
    compiled, _ = compile_inference_module(actor_critic, obs_space, rnn_state_size, verify=True)
    print(f"[2/4] compiled with TorchScript and verified against eager outputs ({time.perf_counter() - start:.2f} s)")

    start = time.perf_counter()
    policy = NativePolicy(compiled, "cpu")
    policy.update_weights(actor_critic, 0)
    print(
        f"[3/4] loaded into the C++ policy ({len(policy.state_names)} weight tensors, 2 replicas) "
        f"({time.perf_counter() - start:.2f} s)"
    )

    print(f"[4/4] batched inference from C++ ({args.iterations} timed calls per batch, 1 intra-op thread):")
    print(f"      {'batch':>6} {'us/batch':>10} {'samples/s':>12}  outputs")
    for batch_size in args.batch_sizes:
        obs = {"obs": torch.randn(batch_size, 4)}
        rnn_states = torch.zeros(batch_size, rnn_state_size)
        policy.warmup(obs, rnn_states, 3)
        micros = policy.benchmark(obs, rnn_states, args.iterations)
        outputs, version = policy.forward(obs, rnn_states)
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in outputs.items())
        print(f"      {batch_size:>6} {micros:>10.1f} {batch_size / micros * 1e6:>12,.0f}  {shapes} (v{version})")

    obs = {"obs": torch.randn(4, 4)}
    rnn_states = torch.zeros(4, rnn_state_size)
    before, _ = policy.forward(obs, rnn_states, deterministic=True)
    with torch.no_grad():
        actor_critic.critic_linear.bias.add_(1.0)
    policy.update_weights(actor_critic, 1)
    after, version = policy.forward(obs, rnn_states, deterministic=True)
    shift = (after["values"] - before["values"]).mean().item()
    print(f"published new weights as policy version {version}: values shifted by {shift:+.3f} (critic bias +1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
