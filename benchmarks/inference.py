"""Policy inference latency per batch: pysf's C++ path (TorchScript run by C++) vs eager PyTorch from Python.

    .venv/bin/python -m benchmarks.inference [--smoke] [--json PATH]

Models (same weights on every path; CartPole-v1 spaces: obs dim 4, 2 actions, categorical head):
* ``CartPole default 64-64 relu``: what ``python -m pysf.train --env CartPole-v1`` trains
  (pysf/envs/native_defaults.py: MLP 64-64 relu, no RNN);
* ``SF default encoder 512-512 elu``: Sample Factory's generic default MLP encoder (pysf's cfg
  defaults ``--encoder_mlp_layers 512 512 --nonlinearity elu``), without the RNN (``--use_rnn False``;
  Sample Factory's default GRU-512 core is not measured).
Both keep the default ``--normalize_input True`` (running mean/std of the observations, frozen in eval).

Paths, at batch sizes 1, 64 and 1024 (per-batch wall time, median and p90 over many calls):
* ``C++ Policy.forward (timed in C++)``: ``pysf._C.Policy.benchmark(obs, rnn_states, 1)`` called many
  times; each value is the C++ ``steady_clock`` time of one ``Policy::forward`` call, the call the
  inference thread makes per batch: inputs to IValues, one consistent weight replica pinned, the
  TorchScript module run under NoGradGuard (obs cast + normalization, MLP, value and logits heads,
  categorical sampling, log-probs), outputs to a TensorMap. No Python anywhere inside the timed region;
  batch gather/scatter of the inference server are not included.
* ``C++ Policy.forward from Python``: ``pysf._C.Policy.forward(obs, rnn_states, False)`` (what
  ``NativePolicy.forward`` calls) timed with ``perf_counter`` in a Python loop: the above plus pybind11
  conversion of the input and output dicts and the GIL release/re-acquire.
* ``C++ InferenceServer round trip``: the native sampler (``pysf._C.Sampler``) with one native CartPole
  env thread, one split of B envs and one inference thread (``--policy_workers_per_policy=1``). Per env
  step: the env thread submits a request, the inference thread gathers obs and RNN states from the
  trajectory buffers, runs the same ``Policy::forward``, scatters actions, logits, log-probs, values,
  policy version and new RNN states back, and wakes the env thread, which steps the B native CartPole envs
  and submits again. Measured from Python as the time between completed trajectory blocks divided by the
  block's steps (``--rollout``), so median/p90 are over per-block means, and each value includes one
  native CartPole step of B envs (reported separately in the notes: it is small).
* ``C++ InferenceServer round trip, 1 core``: the same with the env and inference threads pinned to one
  CPU: hand-offs become context switches on one core instead of cross-core wake-ups, which separates
  the hand-off latency of the machine from the work (training runs the threads on separate cores).
* ``eager PyTorch (no_grad)`` / ``eager PyTorch (inference_mode)``: the same ``ActorCritic`` in eval
  mode called from a Python loop as ``model(model.normalize_obs(obs), rnn_states)``: encoder, heads and
  action sampling + log-probs (Sample Factory's ``forward`` samples actions), the same work as the
  compiled module.

Threads: ``torch.set_num_threads(1)``, as pysf's training process sets it (pysf/algo/runners/runner.py;
the C++ inference threads use the same single-thread intra-op setting). Each path is warmed up first
(TorchScript's profiling executor optimizes after ~3 calls; ``Policy.warmup`` runs both replicas).
Forward-only paths are measured in alternating rounds so machine noise hits them alike.
AOTInductor is not a pysf inference backend (``--inference_backend=aoti`` raises) and is not measured.

Results go to benchmarks/RESULTS.md (section "inference") and benchmarks/results/inference.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

from benchmarks.report import machine_description, machine_line, markdown_table, print_table, save_json, update_results_section

BATCH_SIZES = (1, 64, 1024)

MODEL_CARTPOLE = "CartPole default 64-64 relu"
MODEL_SF = "SF default encoder 512-512 elu"

PATH_CPP = "C++ Policy.forward (timed in C++)"
PATH_CPP_PY = "C++ Policy.forward from Python"
PATH_SERVER = "C++ InferenceServer round trip"
PATH_SERVER_1CORE = "C++ InferenceServer round trip, 1 core"
PATH_EAGER = "eager PyTorch (no_grad)"
PATH_EAGER_IM = "eager PyTorch (inference_mode)"
PATHS = (PATH_CPP, PATH_CPP_PY, PATH_SERVER, PATH_SERVER_1CORE, PATH_EAGER, PATH_EAGER_IM)

INTRA_OP_THREADS = 1  # pysf/algo/runners/runner.py: torch.set_num_threads(1)


# ---- models ----------------------------------------------------------------------------------------------


def model_cfg(model: str):
    """The configuration of ``model`` for CartPole-v1 (native env: spaces read from the C++ spec)."""
    from pysf.cfg.arguments import default_cfg
    from pysf.envs.native_defaults import native_env_defaults

    cfg = default_cfg(env="CartPole-v1", experiment="bench_inference")
    if model == MODEL_CARTPOLE:
        for key, value in native_env_defaults("CartPole-v1").items():
            setattr(cfg, key, value)
    elif model == MODEL_SF:
        cfg.use_rnn = False  # the MLP encoder alone; SF's default GRU-512 core is not part of this row
        cfg.recurrence = 1
    else:
        raise ValueError(model)
    cfg.seed = 0
    cfg.policy_workers_per_policy = 1
    return cfg


def build(model: str):
    """(cfg, env_info, eager actor-critic in eval mode, NativePolicy with the same weights, rnn size)."""
    from pysf.algo.inference.policy_backends import make_inference_policy
    from pysf.algo.utils.env_info import obtain_env_info
    from pysf.model.actor_critic import create_actor_critic
    from pysf.model.model_utils import get_rnn_size

    cfg = model_cfg(model)
    env_info = obtain_env_info(cfg)
    torch.manual_seed(0)
    actor_critic = create_actor_critic(cfg, env_info.obs_space, env_info.action_space).eval()
    for param in actor_critic.parameters():
        param.requires_grad_(False)
    rnn_size = get_rnn_size(cfg)
    # compile_inference_module scripts an eval copy; update_weights copies actor_critic's weights in.
    policy = make_inference_policy(actor_critic, env_info.obs_space, rnn_size, backend="torchscript", verify=False)
    return cfg, env_info, actor_critic, policy, rnn_size


def check_same_model(actor_critic, policy, rnn_size: int) -> float:
    """Max abs difference of values and logits between the C++ policy and the eager model (same weights)."""
    generator = torch.Generator().manual_seed(1)
    obs = {"obs": torch.randn(64, 4, generator=generator)}
    rnn_states = torch.zeros(64, rnn_size)
    with torch.no_grad():
        eager = actor_critic(actor_critic.normalize_obs(obs), rnn_states)
    native, _ = policy.native.forward(obs, rnn_states, True)
    diff = max(
        (eager["values"] - native["values"]).abs().max().item(),
        (eager["action_logits"] - native["action_logits"]).abs().max().item(),
    )
    if diff > 1e-4:
        raise RuntimeError(f"the C++ policy and the eager model disagree (max abs diff {diff:.3g}): not the same model")
    return diff


def aoti_note() -> str:
    """What pysf says when asked for AOTInductor inference."""
    from pysf.algo.inference.policy_backends import INFERENCE_BACKENDS

    if "aoti" in INFERENCE_BACKENDS:
        return "AOTInductor: listed as a pysf backend, but not measured here."
    return f"AOTInductor: not a pysf backend (pysf backends: {', '.join(INFERENCE_BACKENDS)}; --inference_backend=aoti raises), not measured."


# ---- timing ----------------------------------------------------------------------------------------------


def timed_calls(call: Callable[[], float], seconds: float, min_calls: int = 3) -> List[float]:
    """Microseconds of each ``call()`` for about ``seconds`` (``call`` returns its own duration in us)."""
    samples: List[float] = []
    deadline = time.perf_counter() + seconds
    while len(samples) < min_calls or time.perf_counter() < deadline:
        samples.append(call())
    return samples


def perf_counter_us(fn: Callable[[], object]) -> Callable[[], float]:
    def call() -> float:
        start = time.perf_counter_ns()
        fn()
        return (time.perf_counter_ns() - start) / 1e3

    return call


def forward_paths(actor_critic, policy, rnn_size: int, batch: int) -> Tuple[Dict[str, Callable[[], float]], tuple]:
    """One timed call per path (each returns microseconds)."""
    generator = torch.Generator().manual_seed(batch)
    obs = {"obs": torch.randn(batch, 4, generator=generator)}
    rnn_states = torch.zeros(batch, rnn_size)
    native = policy.native

    def eager_no_grad() -> None:
        with torch.no_grad():
            actor_critic(actor_critic.normalize_obs(obs), rnn_states)

    def eager_inference_mode() -> None:
        with torch.inference_mode():
            actor_critic(actor_critic.normalize_obs(obs), rnn_states)

    return {
        PATH_CPP: lambda: native.benchmark(obs, rnn_states, 1, False),
        PATH_CPP_PY: perf_counter_us(lambda: native.forward(obs, rnn_states, False)),
        PATH_EAGER: perf_counter_us(eager_no_grad),
        PATH_EAGER_IM: perf_counter_us(eager_inference_mode),
    }, (obs, rnn_states)


def measure_forward_paths(actor_critic, policy, rnn_size: int, batch: int, seconds: float, rounds: int) -> Dict[str, List[float]]:
    """Per-call microseconds of each forward path: ``seconds`` in all, the paths alternating in ``rounds`` rounds."""
    calls, (obs, rnn_states) = forward_paths(actor_critic, policy, rnn_size, batch)
    policy.warmup(obs, rnn_states, 3)  # both replicas, stochastic and deterministic
    for call in calls.values():
        for _ in range(5):
            call()
    samples: Dict[str, List[float]] = {path: [] for path in calls}
    for _ in range(rounds):
        for path, call in calls.items():
            samples[path] += timed_calls(call, seconds / (rounds * len(calls)), min_calls=2)
    return samples


def env_step_us(batch: int, seconds: float) -> float:
    """Microseconds of one native CartPole step of ``batch`` envs (C++ loop, random actions)."""
    from pysf import _C

    env = _C.NativeVectorEnv("CartPole-v1", batch, 0)
    stats = env.benchmark(max(0.02, seconds), 0)
    return float(stats["ns_per_env_step"]) * batch / 1e3


def measure_server_round_trip(
    cfg, env_info, policy, rnn_size: int, batch: int, rollout: int, seconds: float, one_core: bool = False
) -> Tuple[List[float], int]:
    """Per-env-step microseconds through the native sampler (one env thread, one split, one inference thread).

    ``one_core``: the env and inference threads start pinned to one CPU (they inherit the affinity of the
    thread that starts them), so their hand-offs need no cross-core wake-up. Returns the per-block means
    (block interval / rollout) and the number of blocks timed.
    """
    from pysf.algo.sampling.sampler import Sampler

    cfg = argparse.Namespace(**vars(cfg))
    cfg.num_workers = 1
    cfg.num_envs_per_worker = batch
    cfg.worker_num_splits = 1
    cfg.policy_workers_per_policy = 1
    cfg.rollout = rollout
    cfg.async_rl = True
    cfg.decorrelate_envs_on_one_worker = False  # steady state only
    samples: List[float] = []
    num_blocks = 3
    sampler = Sampler(cfg, env_info, policy, rnn_size, num_blocks=num_blocks)
    affinity = os.sched_getaffinity(0)
    try:
        if one_core:
            os.sched_setaffinity(0, {min(affinity)})
        try:
            sampler.start()
        finally:
            os.sched_setaffinity(0, affinity)  # only the sampler's threads stay pinned
        sampler.release(sampler.get_trajectories(1, 60.0))  # first block: thread start, profiling runs
        warm_until = time.perf_counter() + min(0.3, seconds / 4)
        while True:
            sampler.release(sampler.get_trajectories(1, 60.0))
            last = time.perf_counter_ns()
            if time.perf_counter() >= warm_until:
                break
        rows_before = sampler.samples_collected
        deadline = time.perf_counter() + seconds
        while len(samples) < 3 or time.perf_counter() < deadline:
            blocks = sampler.get_trajectories(1, 60.0)
            now = time.perf_counter_ns()
            sampler.release(blocks)
            samples.append((now - last) / 1e3 / rollout)
            last = now
        sampler.check()
        served = sampler.samples_collected - rows_before
    finally:
        sampler.stop()
    # Blocks completed before rows_before was read (up to all of them, waiting in the queue) are timed but
    # were served earlier.
    if served < (len(samples) - num_blocks) * rollout * batch:
        raise RuntimeError(f"round trip: {served} rows served for {len(samples)} blocks of {rollout}x{batch}")
    return samples, len(samples)


def rollout_for(step_us: float, target_block_us: float = 4000.0) -> int:
    """Steps per trajectory block so that a block takes about ``target_block_us`` (2..32, power of 2)."""
    steps = 2
    while steps < 32 and steps * 2 * step_us <= target_block_us:
        steps *= 2
    return steps


def summarize(model: str, batch: int, path: str, samples: List[float], **extra) -> Dict:
    values = np.asarray(samples, dtype=np.float64)
    median = float(np.median(values))
    return dict(
        model=model,
        batch=batch,
        path=path,
        median_us=median,
        p90_us=float(np.percentile(values, 90)),
        per_sample_us=median / batch,
        calls=int(values.size),
        **extra,
    )


# ---- the benchmark ---------------------------------------------------------------------------------------


def run(smoke: bool = False) -> dict:
    """Measure every (model, batch, path) cell; returns {"rows": [...], "notes": [...], ...}."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(INTRA_OP_THREADS)
    forward_seconds = 0.08 if smoke else 4.0  # all four forward paths of one cell together
    rounds = 2 if smoke else 4
    server_seconds = 0.06 if smoke else 1.0
    rows: List[Dict] = []
    notes: List[str] = []
    started = time.perf_counter()
    try:
        for model in (MODEL_CARTPOLE, MODEL_SF):
            cfg, env_info, actor_critic, policy, rnn_size = build(model)
            diff = check_same_model(actor_critic, policy, rnn_size)
            num_params = sum(p.numel() for p in actor_critic.parameters())
            notes.append(
                f"{model}: {num_params:,} parameters, encoder {list(cfg.encoder_mlp_layers)} {cfg.nonlinearity}, "
                f"use_rnn={cfg.use_rnn}, normalize_input={cfg.normalize_input}; C++ and eager outputs agree "
                f"(max abs diff of values/logits {diff:.1e})."
            )
            env_costs = []
            for batch in BATCH_SIZES:
                gc.collect()
                samples = measure_forward_paths(actor_critic, policy, rnn_size, batch, forward_seconds, rounds)
                for path in (PATH_CPP, PATH_CPP_PY, PATH_EAGER, PATH_EAGER_IM):
                    rows.append(summarize(model, batch, path, samples[path]))
                cpp_median = float(np.median(samples[PATH_CPP]))
                env_us = env_step_us(batch, 0.02 if smoke else 0.1)
                env_costs.append(f"B={batch}: {env_us:.1f} us")
                rollout = rollout_for(cpp_median + env_us)
                server, blocks = measure_server_round_trip(cfg, env_info, policy, rnn_size, batch, rollout, server_seconds)
                rows.append(summarize(model, batch, PATH_SERVER, server, rollout=rollout, env_step_us=env_us))
                pinned, _ = measure_server_round_trip(
                    cfg, env_info, policy, rnn_size, batch, rollout, server_seconds, one_core=True
                )
                rows.append(summarize(model, batch, PATH_SERVER_1CORE, pinned, rollout=rollout, env_step_us=env_us))
                print(
                    f"  {model:32s} B={batch:5d}: C++ {cpp_median:10.1f} us, eager "
                    f"{np.median(samples[PATH_EAGER]):10.1f} us, server {np.median(server):10.1f} us/step "
                    f"(1 core: {np.median(pinned):.1f}; {blocks} blocks of {rollout} steps)",
                    flush=True,
                )
            notes.append(f"{model}: native CartPole step of B envs inside each round-trip value: {', '.join(env_costs)}.")
    finally:
        torch.set_num_threads(previous_threads)
    notes += [
        f"torch.set_num_threads({INTRA_OP_THREADS}) for every path, as pysf's training process sets it "
        "(pysf/algo/runners/runner.py); the C++ inference thread uses the same intra-op setting.",
        "C++ Policy.forward (timed in C++): steady_clock around one Policy::forward in C++ (the call the "
        "inference thread makes; GIL not involved). From Python: the same call through pybind11 "
        "(dict conversions, GIL released and re-acquired), timed with perf_counter.",
        "InferenceServer round trip: one native env thread, one split of B envs, one inference thread; "
        "time between completed trajectory blocks / rollout steps, so median/p90 are over per-block means; "
        "each value includes request hand-off, gather, forward, scatter, wake-up and one native CartPole "
        "step of B envs. The '1 core' rows pin the env and inference threads to one CPU, so each hand-off "
        "is a context switch instead of a cross-core wake-up (on the 2-vCPU development VM, idle, a standalone "
        "C++ condition-variable ping-pong took ~40 us cross-core vs ~4 us on one core); training runs "
        "them on separate cores.",
        "Eager: model(model.normalize_obs(obs), rnn_states) on the same ActorCritic in eval mode (samples "
        "actions and log-probs like the compiled module).",
        "eager/this column: eager (no_grad) median / this row's median, same model and batch; for the "
        "round-trip rows it compares a whole env step through the server (gather, forward, scatter, "
        "hand-offs, env) with a bare eager forward.",
        aoti_note(),
    ]
    return dict(rows=rows, notes=notes, seconds=time.perf_counter() - started, intra_op_threads=INTRA_OP_THREADS)


# ---- reporting -------------------------------------------------------------------------------------------


def _table(result: dict) -> Tuple[List[str], List[List[object]]]:
    eager = {(r["model"], r["batch"]): r["median_us"] for r in result["rows"] if r["path"] == PATH_EAGER}
    order = {path: i for i, path in enumerate(PATHS)}
    rows = sorted(result["rows"], key=lambda r: (r["model"] != MODEL_CARTPOLE, r["batch"], order.get(r["path"], 99)))
    table = []
    for r in rows:
        base = eager.get((r["model"], r["batch"]))
        speedup = f"{base / r['median_us']:.2f}x" if base else ""
        table.append(
            [r["model"], r["batch"], r["path"], f"{r['median_us']:,.1f}", f"{r['p90_us']:,.1f}", f"{r['per_sample_us']:,.3f}", speedup]
        )
    headers = ["model", "batch", "path", "median us/batch", "p90 us/batch", "us/sample", "eager/this"]
    return headers, table


def markdown(result: dict) -> str:
    """Markdown section body: heading, machine, table and notes."""
    headers, table = _table(result)
    lines = ["## Policy inference latency (per batch)", ""]
    if "machine" in result:
        lines += [machine_line(result["machine"]), ""]
    lines += [
        "Command: `.venv/bin/python -m benchmarks.inference`. CartPole-v1 spaces (obs dim 4, 2 actions); "
        "per-batch wall time of one policy forward (actions sampled), median and p90 over many calls.",
        "",
        markdown_table(headers, table),
        "",
    ]
    lines += [f"- {note}" for note in result["notes"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="short measurements (tests); does not write results")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here (smoke runs too)")
    args = parser.parse_args(argv)
    machine = machine_description()
    print(machine_line(machine))
    result = run(smoke=args.smoke)
    result["machine"] = machine
    headers, table = _table(result)
    print()
    print_table(headers, table)
    for note in result["notes"]:
        print(f"* {note}")
    print(f"({result['seconds']:.1f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    if args.smoke:
        return 0
    save_json("inference", result)
    update_results_section("inference", markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
