"""Sampling throughput (env steps/s, no learner): pysf's native and gymnasium paths vs plain Python.

    .venv/bin/python -m benchmarks.sampling [--seconds 3] [--smoke]

Rows:
* native CartPole-v1 (C++ env threads + C++ batched inference) at 1, 64, 1024 and 4096 envs, with 1 and 2
  env worker threads (2 inference threads: ``--policy_workers_per_policy=2``);
* gymnasium CartPole-v1 through pysf's Python path (env worker processes + shared memory), 1 and 2 processes;
* gymnasium's raw single-core ``CartPoleEnv.step`` rate (random actions, no policy) — the reference for the
  Python-path target (>= 80% of it per worker process);
* a plain-Python baseline: eager PyTorch policy + gymnasium ``SyncVectorEnv``.

The policy is pysf's CartPole model: MLP 64-64 tanh, no RNN, categorical head. Results go to
benchmarks/RESULTS.md (section "sampling") and benchmarks/results/sampling.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from benchmarks.report import machine_description, machine_line, markdown_table, print_table, save_json, update_results_section

NATIVE_TARGET = 1_500_000
PYTHON_PATH_TARGET_FRACTION = 0.8


def cartpole_cfg(**overrides):
    from pysf.cfg.arguments import default_cfg

    cfg = default_cfg(env="CartPole-v1", experiment="bench_sampling")
    cfg.use_rnn = False
    cfg.encoder_mlp_layers = [64, 64]
    cfg.nonlinearity = "tanh"
    cfg.rollout = 32
    cfg.seed = 0
    # Steady-state throughput is measured; the warm-up steps would only delay the first block (seconds at
    # 4096 envs per worker, growing with the square of the envs per worker).
    cfg.decorrelate_envs_on_one_worker = False
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def measure_sampler(cfg, seconds: float) -> float:
    """Env steps/s consumed from the sampler in steady state (blocks freed as soon as they arrive)."""
    from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI

    with SyncSamplingAPI(cfg) as sampling:
        sampler = sampling.sampler
        per_block = sampler.block_rows * cfg.rollout

        def consume(duration: float) -> int:
            steps, deadline = 0, time.perf_counter() + duration
            while time.perf_counter() < deadline:
                blocks = sampler.get_trajectories(1, 60.0)
                sampler.release(blocks)
                steps += len(blocks) * per_block
            return steps

        consume(min(2.0, seconds))  # warm-up: process start, TorchScript profiling runs
        start = time.perf_counter()
        steps = consume(seconds)
        return steps / (time.perf_counter() - start)


def native_rows(seconds: float, env_counts: List[int], worker_threads: List[int]) -> List[Dict]:
    rows = []
    for num_envs in env_counts:
        for workers in worker_threads:
            if num_envs % workers != 0 or num_envs < workers:
                continue
            per_worker = num_envs // workers
            splits = 2 if per_worker >= 2 else 1
            cfg = cartpole_cfg(
                num_workers=workers,
                num_envs_per_worker=per_worker,
                worker_num_splits=splits,
                policy_workers_per_policy=1 if num_envs == 1 else 2,
                rollout=32 if num_envs >= 64 else 64,
            )
            sps = measure_sampler(cfg, seconds)
            rows.append(dict(system="pysf native", envs=num_envs, workers=workers, splits=splits, steps_per_sec=sps))
            print(f"  native  envs={num_envs:5d} worker threads={workers}: {sps:12,.0f} env steps/s", flush=True)
    return rows


def python_path_rows(seconds: float, processes: List[int], envs_per_worker: int) -> List[Dict]:
    rows = []
    for workers in processes:
        cfg = cartpole_cfg(
            env_backend="gym", num_workers=workers, num_envs_per_worker=envs_per_worker, worker_num_splits=2,
            policy_workers_per_policy=1,
        )
        sps = measure_sampler(cfg, seconds)
        rows.append(dict(system="pysf gymnasium path", envs=workers * envs_per_worker, workers=workers, splits=2, steps_per_sec=sps))
        print(f"  gym     envs={workers * envs_per_worker:5d} processes={workers}: {sps:12,.0f} env steps/s", flush=True)
    return rows


def raw_gymnasium_rate(seconds: float) -> float:
    """Single-core ``CartPoleEnv.step`` rate with random actions (no policy, no wrappers)."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    env = CartPoleEnv()
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=100_000).tolist()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for action in actions[:10_000]:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        steps += 10_000
    return steps / (time.perf_counter() - start)


def _raw_rate_worker(seconds: float, results) -> None:
    results.put(raw_gymnasium_rate(seconds))


def raw_gymnasium_parallel_rate(seconds: float, processes: int) -> float:
    """Total ``CartPoleEnv.step`` rate of ``processes`` raw loops running at once (what the cores allow)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=_raw_rate_worker, args=(seconds, results)) for _ in range(processes)]
    for w in workers:
        w.start()
    rates = [results.get() for _ in workers]
    for w in workers:
        w.join()
    return float(sum(rates))


def plain_python_rate(seconds: float, num_envs: int = 64) -> float:
    """Eager PyTorch policy + gymnasium SyncVectorEnv, the loop a user would write without pysf."""
    import gymnasium as gym

    from pysf.model.actor_critic import create_actor_critic
    from pysf.model.model_utils import get_rnn_size

    cfg = cartpole_cfg()
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(num_envs)])
    obs_space = gym.spaces.Dict(obs=envs.single_observation_space)
    model = create_actor_critic(cfg, obs_space, envs.single_action_space).eval()
    rnn_states = torch.zeros(num_envs, get_rnn_size(cfg))
    obs, _ = envs.reset(seed=0)
    steps, start = 0, time.perf_counter()
    with torch.no_grad():
        while time.perf_counter() - start < seconds:
            normalized = model.normalize_obs({"obs": torch.as_tensor(obs)})
            actions = model(normalized, rnn_states)["actions"].numpy()
            obs, _, _, _, _ = envs.step(actions)
            steps += num_envs
    envs.close()
    return steps / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measurement time per row")
    parser.add_argument("--smoke", action="store_true", help="tiny configuration (tests); does not write results")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here (smoke runs too)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seconds = 0.5 if args.smoke else args.seconds
    machine = machine_description()
    print(machine_line(machine))

    env_counts = [64] if args.smoke else [1, 64, 1024, 4096]
    raw = raw_gymnasium_rate(seconds)
    print(f"  gymnasium CartPoleEnv.step, raw, 1 core: {raw:12,.0f} steps/s", flush=True)
    raw_two = raw_gymnasium_parallel_rate(seconds, 2)
    print(f"  gymnasium CartPoleEnv.step, raw, 2 processes at once: {raw_two:12,.0f} steps/s in total", flush=True)
    rows = native_rows(seconds, env_counts, [1, 2])
    rows += python_path_rows(seconds, [1] if args.smoke else [1, 2], envs_per_worker=16 if args.smoke else 128)
    plain = plain_python_rate(seconds)
    print(f"  plain Python (eager policy + SyncVectorEnv, 64 envs): {plain:12,.0f} steps/s", flush=True)
    rows.append(dict(system="plain Python (eager + SyncVectorEnv)", envs=64, workers=1, splits=1, steps_per_sec=plain))
    rows.append(dict(system="gymnasium CartPoleEnv.step (no policy)", envs=1, workers=1, splits=1, steps_per_sec=raw))
    rows.append(dict(system="gymnasium CartPoleEnv.step (no policy), 2 processes", envs=2, workers=2, splits=1, steps_per_sec=raw_two))

    table = []
    for row in rows:
        note = ""
        if row["system"] == "pysf gymnasium path":
            per_process = row["steps_per_sec"] / row["workers"]
            note = f"{per_process / raw:.0%} of raw single-core per process (target >= {PYTHON_PATH_TARGET_FRACTION:.0%})"
            if row["workers"] == 2:
                note += f"; {row['steps_per_sec'] / raw_two:.0%} of 2 raw loops running at once"
        elif row["system"] == "pysf native":
            note = f"{row['steps_per_sec'] / plain:.2g}x plain Python"
        table.append([row["system"], row["envs"], row["workers"], f"{row['steps_per_sec']:,.0f}", note])
    headers = ["system", "envs", "workers", "env steps/s", "notes"]
    print()
    print_table(headers, table)
    best_native = max(r["steps_per_sec"] for r in rows if r["system"] == "pysf native")
    verdict = f"best native: {best_native:,.0f} env steps/s (target >= {NATIVE_TARGET:,}: {'met' if best_native >= NATIVE_TARGET else 'MISSED'})"
    print(verdict)
    result = dict(machine=machine, rows=rows, raw_gymnasium=raw, raw_gymnasium_two_processes=raw_two, plain_python=plain)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    if args.smoke:
        return 0
    save_json("sampling", result)
    body = "\n".join(
        [
            "## Sampling throughput (no learner)",
            "",
            machine_line(machine),
            "",
            "Command: `.venv/bin/python -m benchmarks.sampling`. Policy: MLP 64-64 tanh, categorical head, no RNN; "
            "rollout 32; native rows use 2 inference threads (`--policy_workers_per_policy=2`) and "
            "`--worker_num_splits=2`; gymnasium rows use 128 envs per worker process (64 per split).",
            "",
            markdown_table(headers, table),
            "",
            verdict + ".",
            "",
            f"Two raw gymnasium CartPole loops running at once reached {raw_two:,.0f} steps/s in total "
            f"({raw_two / raw:.2f}x one loop) in this run; the 2-process row is also compared with that parallel "
            "baseline. With 2 worker processes on 2 cores, the sampler's inference and proxy threads in the main "
            "process need the same cores as the workers (workers are pinned and niced as in Sample Factory, "
            "`--set_workers_cpu_affinity`), so a process cannot keep a core to itself. With 1 process, envs made by "
            "`gymnasium.make` are stepped without the checker/order wrappers and get numpy-integer actions (README). "
            "This shared 2-vCPU machine's throughput varies by up to 2x between runs (other tenants).",
        ]
    )
    update_results_section("sampling", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
