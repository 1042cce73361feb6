"""pysf vs Sample Factory 2.1.1 on pixels and physics: Atari Pong and MuJoCo HalfCheetah, side by side.

    .venv/bin/python -m benchmarks.suites [--reps 2] [--seconds 120] [--workloads pong halfcheetah] [--smoke]

Two parts, both with the settings of the suites' example scripts (Sample Factory's own ``sf_examples/atari`` and
``sf_examples/mujoco`` settings, which pysf's ``examples/train_atari.py`` and ``examples/train_mujoco.py`` copy), on
2 workers with 2 splits each, the same model and envs on both sides (Pong: ``convnet_simple``, 8 games; HalfCheetah: 16
envs; each the number one synchronous training iteration takes):

1. **End to end**: every system trains for ``--seconds`` in a fresh process, ``--reps`` times, the systems
   alternating (rep r starts with the r-th); steady env frames/s (from the first training iteration or progress
   report to the end: start-up excluded) and the peak RSS/PSS of the process tree. Frames count Atari's
   frameskip, as both trainers report them (``--summaries_use_frameskip``).
2. **Each stage alone**, in this process on pysf's venv, on one thread, as CPU-milliseconds per env frame: env stepping with
   random actions, one inference forward (normalization, model, action sampling) at the batch one inference
   request carries, and the learner (``Learner.train`` on a batch of the run's size: every sample through
   ``--num_epochs`` forward+backward+Adam passes). ``limit = cores / (sum of the stages' CPU-s per frame)`` is
   what the machine allows if every core did useful work all the time; the end-to-end figures are read against it.

Sample Factory runs from its peer venv (benchmarks/peers/setup_peers.sh: gymnasium 0.29.1 with ale-py 0.9.0 and
HalfCheetah-v4, as Sample Factory 2.1.1 needs) through benchmarks/peers/sf_train.py; pysf runs gymnasium 1.x with
ale-py 0.12.1 and HalfCheetah-v5. Results: a table on stdout and benchmarks/RESULTS.md (section "suites");
``--smoke`` runs a tiny version and leaves RESULTS.md alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Optional, Sequence

from benchmarks.compare import (
    DEFAULT_PEERS_DIR, System, TrainingRun, alternating_order, fmt, median_of, parse_pysf_result,
    parse_sample_factory_console, peer_versions, train_once,
)
from benchmarks.report import machine_description, machine_line, markdown_table, print_table, update_results_section

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(__file__).resolve().parent / "peers"

TARGETS = dict(pong=dict(vs_sf=2.0, of_limit=0.6), halfcheetah=dict(vs_sf=3.0, of_limit=None))


@dataclass
class Workload:
    """One suite: how each system trains it, and how its stages are built here."""

    name: str
    module: str  # the Python package the suite needs in pysf's venv
    example: str  # pysf's example script (its parser and env factory are reused for the stages)
    env_name: str
    # Flags both systems get on top of their example's defaults: 2 workers in 2 splits (double-buffered sampling),
    # as many envs as one synchronous training iteration takes (its dataset is a multiple of one rollout of all envs).
    shared_flags: List[str]
    systems: Dict[str, List[str]]  # pysf system name -> extra flags of the example script (they replace shared ones)
    sf_example: str  # Sample Factory's example module
    describe: str


WORKLOADS: Dict[str, Workload] = {
    "pong": Workload(
        "pong", "ale_py", "examples/train_atari.py", "atari_pong",
        ["--num_workers=2", "--num_envs_per_worker=4", "--worker_num_splits=2", "--encoder_conv_architecture=convnet_simple"],
        {"pysf": [], "pysf-vector": ["--atari_vector_envs=4", "--num_envs_per_worker=1", "--worker_num_splits=1"]},
        "sf_examples.atari.train_atari",
        "Atari Pong, 84x84x4 grayscale, frameskip 4, `convnet_simple`, Sample Factory's Atari settings (synchronous "
        "PPO, rollout 128, 4 epochs of 4 minibatches of 256)",
    ),
    "halfcheetah": Workload(
        "halfcheetah", "mujoco", "examples/train_mujoco.py", "mujoco_halfcheetah",
        ["--num_workers=2", "--num_envs_per_worker=8", "--worker_num_splits=2"],
        {"pysf": []}, "sf_examples.mujoco.train_mujoco",
        "MuJoCo HalfCheetah (pysf: v5, Sample Factory: v4), 64x64 tanh MLP, Sample Factory's MuJoCo settings "
        "(synchronous PPO, rollout 64, 2 epochs of 4 minibatches of 1024)",
    ),
}


def load_example(path: str) -> ModuleType:
    """One of pysf's example scripts as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def make_systems(workload: Workload, peers_dir: Path) -> Dict[str, System]:
    """pysf's variants of the workload and Sample Factory's run of its own example."""
    systems: Dict[str, System] = {}
    for name, extra in workload.systems.items():
        overridden = {flag.split("=")[0] for flag in extra}
        shared = [flag for flag in workload.shared_flags if flag.split("=")[0] not in overridden]
        flags = [f"--env={workload.env_name}", *shared, *extra]

        def command(seed: int, env_steps: int, seconds: float, run_dir: Path, flags: List[str] = flags) -> List[str]:
            return [
                sys.executable, str(ROOT / workload.example), *flags, "--experiment=exp", f"--train_dir={run_dir}",
                f"--seed={seed}", f"--train_for_env_steps={env_steps}", f"--train_for_seconds={int(seconds)}",
                "--restart_behavior=overwrite",
            ]

        systems[name] = System(name, Path(sys.executable), f"python {workload.example} " + " ".join(flags), command, parse_pysf_result)
    sf_python = peers_dir / "sf" / "bin" / "python"
    sf_flags = [f"--env={workload.env_name}", *workload.shared_flags, "--device=cpu"]
    systems["sample-factory"] = System(
        "sample-factory", sf_python, f"python benchmarks/peers/sf_train.py {workload.sf_example} " + " ".join(sf_flags),
        lambda seed, steps, seconds, run_dir: [
            str(sf_python), str(PEERS / "sf_train.py"), workload.sf_example, *sf_flags, f"--train_for_env_steps={steps}",
            f"--train_for_seconds={int(seconds)}", f"--seed={seed}", "--experiment=exp", f"--train_dir={run_dir}",
        ],
        parse_sample_factory_console, ignores_time_limit=True,
    )
    return systems


# ---- each stage alone -------------------------------------------------------------------------------------


def cpu_ms_per_unit(step: Callable[[], None], units_per_call: float, seconds: float) -> float:
    """CPU milliseconds (every thread of this process) per unit of work, over at least ``seconds`` of calls."""
    step()  # warm-up
    calls, cpu_start, wall_start = 0, time.process_time(), time.perf_counter()
    while calls < 2 or time.perf_counter() - wall_start < seconds:
        step()
        calls += 1
    return 1000.0 * (time.process_time() - cpu_start) / (calls * units_per_call)


def measure_stages(workload: Workload, seconds: float) -> Dict[str, float]:
    """CPU-ms per env frame of each stage, with the training process's thread count; and the settings used."""
    import numpy as np
    import torch

    from pysf.algo.learning.learner import Learner
    from pysf.algo.utils.env_info import extract_env_info
    from pysf.algo.utils.tensor_dict import TensorDict
    from pysf.algo.utils.torch_utils import torch_threads
    from pysf.model.actor_critic import create_actor_critic
    from pysf.model.encoder import has_conv_encoder
    from pysf.model.model_utils import get_rnn_size

    example = load_example(workload.example)
    parse = getattr(example, "parse_atari_args", None) or getattr(example, "parse_mujoco_args")
    make_env = getattr(example, "make_atari_env", None) or getattr(example, "make_mujoco_env")
    cfg = parse([f"--env={workload.env_name}", *workload.shared_flags])
    frameskip = int(cfg.env_frameskip) if cfg.summaries_use_frameskip else 1
    env = make_env(workload.env_name, cfg)
    info = extract_env_info(env, cfg)
    # One thread: a stage's own CPU cost, without the hand-offs of a parallel region (the training process may use
    # more threads to finish sooner, at a higher CPU cost per frame).
    torch.set_num_threads(1)
    result: Dict[str, float] = dict(threads=1, trainer_threads=torch_threads(cfg, has_conv_encoder(info.obs_space)),
                                    frameskip=frameskip)

    # Env stepping: the example's env with random actions (auto-reset), one env per process as in a worker.
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    env.action_space.seed(0)

    def env_step() -> None:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()

    result["env"] = cpu_ms_per_unit(env_step, frameskip, seconds)
    env.close()
    if "pysf-vector" in workload.systems:  # ale_py's AtariVectorEnv of 8 games, on one thread of its own
        cfg.atari_vector_envs = 8
        vector_env = make_env(workload.env_name, cfg)
        cfg.atari_vector_envs = 0
        vector_env.reset(seed=0)
        num_envs = vector_env.num_envs
        actions = lambda: rng.integers(0, info.action_space.n, size=num_envs)  # noqa: E731
        result["env_vector"] = cpu_ms_per_unit(lambda: vector_env.step(actions()), num_envs * frameskip, seconds)
        vector_env.close()

    # Inference: normalization, the model and action sampling at one request's batch (the envs of one split
    # of each worker).
    batch = int(cfg.num_envs_per_worker) * int(cfg.num_workers) // int(cfg.worker_num_splits)
    model = create_actor_critic(cfg, info.obs_space, info.action_space).eval()
    obs_shape = info.obs_space["obs"].shape
    obs_dtype = torch.uint8 if info.obs_space["obs"].dtype == np.uint8 else torch.float32

    def random_obs(rows: int) -> torch.Tensor:
        if obs_dtype == torch.uint8:
            return torch.randint(0, 256, (rows, *obs_shape), dtype=torch.uint8)
        return torch.randn(rows, *obs_shape)

    rnn_size = get_rnn_size(cfg)
    inference_obs, inference_rnn = random_obs(batch), torch.zeros(batch, rnn_size)

    @torch.no_grad()
    def infer() -> None:
        model(model.normalize_obs({"obs": inference_obs}), inference_rnn)

    result["inference"] = cpu_ms_per_unit(infer, batch * frameskip, seconds)
    result["inference_batch"] = batch

    # The learner: one training iteration on a batch of the run's size, filled by the model's own outputs.
    samples = int(cfg.batch_size) * int(cfg.num_batches_per_epoch)
    rollout = int(cfg.rollout)
    num_traj = samples // rollout
    with torch.no_grad():
        flat_obs = random_obs(num_traj * (rollout + 1))
        out = model(model.normalize_obs({"obs": flat_obs}), torch.zeros(len(flat_obs), rnn_size))
    per_step = lambda t: t.view(num_traj, rollout + 1, *t.shape[1:])[:, :rollout].contiguous()  # noqa: E731
    training_batch = lambda: TensorDict(  # noqa: E731 - a fresh one per call: the learner completes it in place
        obs=TensorDict(obs=flat_obs.view(num_traj, rollout + 1, *obs_shape)),
        rnn_states=torch.zeros(num_traj, rollout + 1, rnn_size),
        actions=per_step(out["actions"].float()), action_logits=per_step(out["action_logits"]),
        log_prob_actions=per_step(out["log_prob_actions"]), values=out["values"].view(num_traj, rollout + 1).clone(),
        rewards=torch.rand(num_traj, rollout), dones=torch.rand(num_traj, rollout) < 0.01,
        time_outs=torch.zeros(num_traj, rollout, dtype=torch.bool),
        policy_version=torch.zeros(num_traj, rollout, dtype=torch.int32),
        policy_id=torch.zeros(num_traj, rollout, dtype=torch.int32),
    )
    learner = Learner(cfg, info)
    result["learner"] = cpu_ms_per_unit(lambda: learner.train(training_batch()), samples * frameskip, seconds)
    result["learner_samples"] = samples
    result["num_epochs"] = int(cfg.num_epochs)
    return result


def stage_limit(stages: Dict[str, float], env_key: str) -> float:
    """Env frames/s the machine's cores allow when every one of them does useful work all the time."""
    cpu_ms_per_frame = stages[env_key] + stages["inference"] + stages["learner"]
    return (os.cpu_count() or 1) * 1000.0 / cpu_ms_per_frame


# ---- main ------------------------------------------------------------------------------------------------


def run_workload(workload: Workload, args, peers_dir: Path, scratch: Path) -> dict:
    systems = make_systems(workload, peers_dir)
    unavailable = {n: reason for n, s in systems.items() if (reason := s.missing())}
    runnable = [n for n in systems if n not in unavailable]
    runs: List[TrainingRun] = []
    for rep in range(args.reps):
        for name in alternating_order(runnable, rep):
            print(f"[{workload.name} rep {rep + 1}/{args.reps}] {name}: training for {args.seconds:.0f} s ...", flush=True)
            run = train_once(systems[name], rep, rep, 10**9, args.seconds, scratch / workload.name)
            runs.append(run)
            print(f"    {fmt(run.steady_fps)} frames/s steady, peak RSS {fmt(run.peak_rss_mb)} MB" if run.ok
                  else f"    FAILED: {run.error}", flush=True)
    print(f"[{workload.name}] each stage alone ...", flush=True)
    stages = measure_stages(workload, args.stage_seconds)
    return dict(workload=workload, systems=systems, unavailable=unavailable, runs=runs, stages=stages)


def summary_rows(result: dict) -> List[List[str]]:
    """Per system: median frames/s, its share of the stage limit, its ratio to Sample Factory, memory."""
    stages, runs = result["stages"], result["runs"]
    sf = median_of([r for r in runs if r.system == "sample-factory"], "steady_fps")
    rows = []
    for name in result["systems"]:
        if name in result["unavailable"]:
            rows.append([name, result["unavailable"][name], "", "", "", "", ""])
            continue
        mine = [r for r in runs if r.system == name]
        fps = median_of(mine, "steady_fps")
        limit = stage_limit(stages, "env_vector" if name == "pysf-vector" else "env")
        rows.append([
            name, " / ".join(fmt(r.steady_fps) for r in mine), fmt(fps), fmt(fps / limit * 100 if fps else None, "{:.0f}%"),
            fmt(fps / sf if fps and sf else None, "{:.2f}x"), fmt(median_of(mine, "peak_rss_mb")), fmt(median_of(mine, "peak_pss_mb")),
        ])
    return rows


SUMMARY_HEADERS = ["system", "frames/s per run", "median frames/s", "of the stage limit", "vs Sample Factory",
                   "peak RSS MB (tree)", "peak PSS MB (tree)"]
STAGE_HEADERS = ["stage", "CPU ms per env frame", "settings"]


def stage_rows(stages: Dict[str, float]) -> List[List[str]]:
    rows = [["env stepping (one env, random actions)", f"{stages['env']:.3f}", "the example's env"]]
    if "env_vector" in stages:
        rows.append(["env stepping (AtariVectorEnv of 8, 1 thread)", f"{stages['env_vector']:.3f}", "ale_py's C++ preprocessing"])
    rows += [
        ["inference forward", f"{stages['inference']:.3f}", f"batch {stages['inference_batch']:.0f}, 1 torch thread"],
        ["learner", f"{stages['learner']:.3f}", f"{stages['learner_samples']:.0f} samples x {stages['num_epochs']:.0f} epochs, "
                                               f"1 torch thread (the trainer uses {stages['trainer_threads']:.0f})"],
    ]
    limits = [f"{stage_limit(stages, 'env'):,.0f} frames/s"]
    if "env_vector" in stages:
        limits.append(f"{stage_limit(stages, 'env_vector'):,.0f} with AtariVectorEnv")
    rows.append([f"limit on {os.cpu_count()} cores", "", " / ".join(limits)])
    return rows


def verdicts(result: dict) -> List[str]:
    """The issue's targets for this workload: met / MISSED / n/a, for pysf's best variant."""
    name = result["workload"].name
    targets = TARGETS.get(name, {})
    runs, stages = result["runs"], result["stages"]
    sf = median_of([r for r in runs if r.system == "sample-factory"], "steady_fps")
    best_name, best = None, None
    for system in result["workload"].systems:
        fps = median_of([r for r in runs if r.system == system], "steady_fps")
        if fps is not None and (best is None or fps > best):
            best_name, best = system, fps
    out = []
    if targets.get("vs_sf"):
        value = best / sf if best and sf else None
        out.append(f"{best_name} >= {targets['vs_sf']:g}x Sample Factory: "
                   + ("n/a" if value is None else f"{value:.2f}x, {'met' if value >= targets['vs_sf'] else 'MISSED'}"))
    if targets.get("of_limit") and best:
        limit = stage_limit(stages, "env_vector" if best_name == "pysf-vector" else "env")
        share = best / limit
        out.append(f"{best_name} >= {targets['of_limit']:.0%} of the stage limit: {share:.0%}, "
                   + ("met" if share >= targets["of_limit"] else "MISSED"))
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds of training per run")
    parser.add_argument("--stage_seconds", type=float, default=5.0, help="seconds of calls per stage measurement")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--peers_dir", type=Path, default=Path(os.environ.get("PYSF_PEERS_DIR", DEFAULT_PEERS_DIR)))
    parser.add_argument("--smoke", action="store_true", help="1 rep of 20 s, 0.5 s per stage; RESULTS.md untouched")
    args = parser.parse_args(argv)
    if args.smoke:
        args.reps, args.seconds, args.stage_seconds = 1, 20.0, 0.5
    started, load_start = time.time(), os.getloadavg()[0]
    machine = machine_description()
    print(machine_line(machine), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="pysf_suites_") as scratch:
        for name in args.workloads:
            workload = WORKLOADS[name]
            if importlib.util.find_spec(workload.module) is None:
                print(f"{name}: {workload.module} is not installed in pysf's venv (pip install 'pysf[...]'): skipped")
                continue
            (Path(scratch) / name).mkdir()
            results.append(run_workload(workload, args, args.peers_dir, Path(scratch)))
    load_end = os.getloadavg()[0]

    lines = [
        "## Pong and HalfCheetah: pysf vs Sample Factory 2.1.1 (`benchmarks/suites.py`)",
        "",
        machine_line(machine),
        f"Command: `.venv/bin/python -m benchmarks.suites --reps {args.reps} --seconds {args.seconds:.0f}`; "
        f"{(time.time() - started) / 60:.1f} min; load average {load_start:.1f} at the start, {load_end:.1f} at the end "
        "(the runs' own: nothing else ran). Versions: "
        + "; ".join(f"**{k}**: {v}" for k, v in peer_versions_for(results).items()) + ".",
        "",
    ]
    failed = False
    for result in results:
        workload = result["workload"]
        rows, stages = summary_rows(result), stage_rows(result["stages"])
        print()
        print_table(SUMMARY_HEADERS, rows)
        print_table(STAGE_HEADERS, stages)
        for verdict in verdicts(result):
            print(f"  target: {verdict}")
        failed = failed or any(not r.ok for r in result["runs"])
        lines += [
            f"### {workload.describe}",
            "",
            markdown_table(SUMMARY_HEADERS, rows),
            "",
            "Each stage alone (pysf's venv, this process):",
            "",
            markdown_table(STAGE_HEADERS, stages),
            "",
            "Targets: " + "; ".join(verdicts(result)) + "." if verdicts(result) else "",
            "",
            "Commands (each run adds `--experiment=exp --train_dir=<scratch> --seed=<rep> --train_for_seconds=S`):",
            "",
            *[f"- {name}: `{system.describe}`" for name, system in result["systems"].items()],
            "",
            *[f"- FAILED {r.system} rep {r.rep}: {r.error.splitlines()[0] if r.error else ''}" for r in result["runs"] if not r.ok],
        ]
    if not args.smoke:
        update_results_section("suites", "\n".join(lines))
        print("RESULTS.md updated (section 'suites')")
    return 1 if failed else 0


def peer_versions_for(results: List[dict]) -> Dict[str, str]:
    """Package versions of pysf's venv and Sample Factory's (the suites' packages included)."""
    if not results:
        return {}
    systems = results[0]["systems"]
    extra = ["ale-py", "mujoco"]
    return peer_versions({"pysf-native": systems[next(iter(results[0]["workload"].systems))],
                          "sample-factory": systems["sample-factory"]}, extra)


if __name__ == "__main__":
    sys.exit(main())
