"""Native env throughput: env-steps/s of each pysf._C.NativeVectorEnv, one thread, random actions.

    .venv/bin/python -m benchmarks.native_envs [--seconds 1.0] [--envs 1 64 4096] [--no-gym]

Columns, per env id and block size N:
* ``C++ loop``: NativeVectorEnv.benchmark, i.e. step() called from a C++ loop into preallocated outputs
  with pre-drawn float32 actions: the env's own cost (validation, physics, auto-reset, bookkeeping);
* ``from Python``: step_into() called from a Python loop into preallocated tensors (adds ~1-2 us of
  binding overhead per call, which dominates at small N);
* ``gymnasium``: the reference, gymnasium's own unwrapped env.step() with random actions (one env).
Not a test: numbers depend on the machine and its load; run on an idle machine.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from pysf import _C


def python_loop_steps_per_second(name: str, num_envs: int, seconds: float) -> float:
    env = _C.NativeVectorEnv(name, num_envs, 0)
    space = env.spec["action_space"]
    generator = torch.Generator().manual_seed(0)
    batches = 16
    if space["kind"] == "discrete":
        actions = torch.randint(0, space["n"], (batches, num_envs, 1), generator=generator).float()
    else:
        low, high = space["low"][0], space["high"][0]
        actions = torch.rand(batches, num_envs, 1, generator=generator) * (high - low) + low
    obs = torch.empty(num_envs, env.observation_size)
    rewards = torch.empty(num_envs)
    terminated = torch.empty(num_envs, dtype=torch.bool)
    truncated = torch.empty(num_envs, dtype=torch.bool)
    episode_return = torch.empty(num_envs)
    episode_length = torch.empty(num_envs, dtype=torch.int32)
    env.reset_into(obs)
    step = env.step_into
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for b in range(batches):
            step(actions[b], obs, rewards, terminated, truncated, episode_return, episode_length)
        calls += batches
        now = time.perf_counter()
        if now >= deadline:
            return calls * num_envs / (now - start)


def gymnasium_steps_per_second(name: str, seconds: float) -> float:
    import gymnasium as gym

    env = gym.make(name).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        actions = [int(a) for a in rng.integers(space.n, size=1024)]
    else:
        actions = [a.astype(np.float32) for a in rng.uniform(space.low, space.high, size=(1024, *space.shape))]
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for action in actions:
            _, _, terminated, _, _ = env.step(action)
            if terminated:
                env.reset()
        steps += len(actions)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per cell")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 64, 4096], help="block sizes")
    parser.add_argument("--no-gym", action="store_true", help="skip the gymnasium reference column")
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread, "
          f"{args.seconds:g} s per cell; env-steps/s (ns per env-step)")
    header = f"{'env':<26} {'N':>5} {'C++ loop':>22} {'from Python':>22} {'gymnasium (1 env)':>20}"
    print(header)
    print("-" * len(header))
    for name in _C.native_env_names():
        gym_rate = None if args.no_gym else gymnasium_steps_per_second(name, min(args.seconds, 0.5))
        for num_envs in args.envs:
            native = _C.NativeVectorEnv(name, num_envs, 0).benchmark(args.seconds, 1)["env_steps_per_second"]
            from_python = python_loop_steps_per_second(name, num_envs, args.seconds)
            gym_cell = "" if gym_rate is None or num_envs != args.envs[0] else f"{gym_rate / 1e3:,.0f} k"
            print(
                f"{name:<26} {num_envs:>5} {native / 1e6:>10,.2f} M ({1e9 / native:6.1f} ns)"
                f" {from_python / 1e6:>10,.2f} M ({1e9 / from_python:6.1f} ns) {gym_cell:>20}"
            )


if __name__ == "__main__":
    main()
