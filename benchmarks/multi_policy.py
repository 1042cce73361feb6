"""Several policies (issue 13): the cost of mixing policies in one env, and pysf vs Sample Factory with 2 policies.

    .venv/bin/python -m benchmarks.multi_policy [--reps 2] [--seconds 60] [--policies 1 2 4] [--smoke]

Two parts, each a fresh training process per run, the runs of a part alternating (rep r starts with the r-th):

1. **Mixing**: native ``ConnectFour-v0`` self-play (``python -m pysf.train --env ConnectFour-v0 --num_policies N``,
   pysf's native defaults), with 1, 2 and 4 policies. Every game's two seats are agents mapped to policies, and
   async mode redraws the mapping every 10 episodes, so every inference batch holds rows of several policies.
   Steady env frames/s and the ratio to 1 policy (target: >= 0.8 with 4). Sample Factory cannot mix policies
   inside a batched env at all, so this part is pysf's alone.
2. **Side by side**: Sample Factory 2.1.1's own ``sf_examples/train_custom_multi_env`` (a 2-agent Python env)
   with ``--num_policies=2``: Sample Factory from its peer venv (benchmarks/peers/setup_peers.sh), pysf on the same
   script with ``sample_factory`` renamed to ``pysf`` (read from the peer venv, written to a scratch folder), the
   same flags on both sides. Frames are agent steps on both sides (each agent's step is a sample). Target: pysf
   >= 5x Sample Factory's frames/s.

Results: tables on stdout, benchmarks/RESULTS.md (section "multi_policy") and benchmarks/results/multi_policy.json;
``--smoke`` runs a tiny version and writes neither.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from benchmarks.compare import (
    DEFAULT_PEERS_DIR, System, TrainingRun, alternating_order, fmt, median_of, parse_pysf_result,
    parse_sample_factory_console, train_once,
)
from benchmarks.report import machine_description, machine_line, markdown_table, print_table, save_json, update_results_section

MIXING_TARGET = 0.8  # 4 policies' frames/s over 1 policy's
VS_SF_TARGET = 5.0
MULTI_ENV_EXAMPLE = "sf_examples.train_custom_multi_env"
# Both systems: Sample Factory's multi-agent example with 2 policies on 2 workers in 2 splits.
MULTI_ENV_FLAGS = ["--env=my_custom_multi_env_v1", "--num_policies=2", "--num_workers=2", "--num_envs_per_worker=4",
                   "--worker_num_splits=2", "--device=cpu"]


def mixing_systems(policies: Sequence[int]) -> Dict[str, System]:
    """pysf on native ConnectFour-v0 with each number of policies."""
    systems = {}
    for count in policies:
        def command(seed: int, env_steps: int, seconds: float, run_dir: Path, count: int = count) -> List[str]:
            return [
                sys.executable, "-m", "pysf.train", "--env", "ConnectFour-v0", "--num_policies", str(count),
                "--experiment", "exp", "--train_dir", str(run_dir), "--seed", str(seed),
                "--train_for_env_steps", str(env_steps), "--train_for_seconds", str(int(seconds)),
                "--restart_behavior", "overwrite",
            ]

        name = f"{count} polic{'y' if count == 1 else 'ies'}"
        systems[name] = System(name, Path(sys.executable),
                               f"python -m pysf.train --env ConnectFour-v0 --num_policies {count}", command, parse_pysf_result)
    return systems


def copy_sf_examples_renamed(sf_python: Path, target: Path) -> bool:
    """Sample Factory's top-level ``sf_examples`` modules from its peer venv into ``target/sf_examples``, with
    ``sample_factory`` renamed to ``pysf`` (the examples import one another); False when it is not installed."""
    found = sorted((sf_python.parent.parent / "lib").glob("python3*/site-packages/sf_examples"))
    if not found:
        return False
    package = target / "sf_examples"
    package.mkdir(parents=True, exist_ok=True)
    for module in found[0].glob("*.py"):
        (package / module.name).write_text(module.read_text().replace("sample_factory", "pysf"))
    return True


def side_by_side_systems(peers_dir: Path, scratch: Path) -> Tuple[Dict[str, System], Dict[str, str]]:
    """Sample Factory's multi-agent example in its venv, and the same script on pysf; and which of them cannot run
    here, with why."""
    sf_python = peers_dir / "sf" / "bin" / "python"
    systems: Dict[str, System] = {}
    examples_dir = scratch / "pysf_examples"
    unavailable = {} if copy_sf_examples_renamed(sf_python, examples_dir) else {
        "pysf": "needs Sample Factory's example scripts, from its peer venv (benchmarks/peers/setup_peers.sh sf)"}

    def pysf_command(seed: int, env_steps: int, seconds: float, run_dir: Path) -> List[str]:
        return [
            sys.executable, "-c", f"import sys, runpy; sys.path.insert(0, {str(examples_dir)!r}); "
            f"runpy.run_module({MULTI_ENV_EXAMPLE!r}, run_name='__main__', alter_sys=True)",
            *MULTI_ENV_FLAGS, "--experiment=exp", f"--train_dir={run_dir}", f"--seed={seed}",
            f"--train_for_env_steps={env_steps}", f"--train_for_seconds={int(seconds)}",
        ]

    systems["pysf"] = System("pysf", Path(sys.executable), f"python -m {MULTI_ENV_EXAMPLE} (renamed) " + " ".join(MULTI_ENV_FLAGS),
                             pysf_command, parse_pysf_result)
    systems["sample-factory"] = System(
        "sample-factory", sf_python, f"python -m {MULTI_ENV_EXAMPLE} " + " ".join(MULTI_ENV_FLAGS),
        lambda seed, steps, seconds, run_dir: [
            str(sf_python), "-m", MULTI_ENV_EXAMPLE, *MULTI_ENV_FLAGS, f"--train_for_env_steps={steps}",
            f"--train_for_seconds={int(seconds)}", f"--seed={seed}", "--experiment=exp", f"--train_dir={run_dir}",
        ],
        parse_sample_factory_console, ignores_time_limit=True,
    )
    return systems, unavailable


def run_part(part: str, systems: Dict[str, System], unavailable: Optional[Dict[str, str]] = None, *, reps: int,
             seconds: float, scratch: Path) -> dict:
    """Every available system ``reps`` times for ``seconds`` each, alternating (``unavailable``: systems known not to
    run here, with why, besides those whose venv is missing)."""
    unavailable = dict(unavailable or {})
    unavailable.update({name: reason for name, system in systems.items() if name not in unavailable and (reason := system.missing())})
    runnable = [name for name in systems if name not in unavailable]
    (scratch / part).mkdir(parents=True, exist_ok=True)
    runs: List[TrainingRun] = []
    for rep in range(reps):
        for name in alternating_order(runnable, rep):
            print(f"[{part} rep {rep + 1}/{reps}] {name}: training for {seconds:.0f} s ...", flush=True)
            run = train_once(systems[name], rep, rep, 10**9, seconds, scratch / part)
            runs.append(run)
            print(f"    {fmt(run.steady_fps)} frames/s steady" if run.ok else f"    FAILED: {run.error}", flush=True)
    return dict(systems=systems, unavailable=unavailable, runs=runs)


def table(result: dict, baseline: str, ratio_header: str) -> tuple:
    """Per system: frames/s of each run, the median, and its ratio to ``baseline``'s median."""
    runs, unavailable = result["runs"], result["unavailable"]
    base = median_of([r for r in runs if r.system == baseline], "steady_fps")
    headers = ["system", "frames/s per run", "median frames/s", ratio_header]
    rows = []
    for name in result["systems"]:
        if name in unavailable:
            rows.append([name, unavailable[name], "-", "-"])
            continue
        mine = [r for r in runs if r.system == name]
        median = median_of(mine, "steady_fps")
        per_run = ", ".join(fmt(r.steady_fps) if r.ok else "failed" for r in mine)
        ratio = None if median is None or not base else median / base
        rows.append([name, per_run, fmt(median), fmt(ratio, "{:.2f}")])
    return headers, rows


def ratio_of(result: dict, name: str, baseline: str) -> Optional[float]:
    mine = median_of([r for r in result["runs"] if r.system == name], "steady_fps")
    base = median_of([r for r in result["runs"] if r.system == baseline], "steady_fps")
    return None if mine is None or not base else mine / base


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--policies", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--parts", nargs="+", default=["mixing", "side_by_side"], choices=["mixing", "side_by_side"])
    parser.add_argument("--peers_dir", type=Path, default=Path(os.environ.get("PYSF_PEERS_DIR", DEFAULT_PEERS_DIR)))
    parser.add_argument("--smoke", action="store_true", help="one 15-s run per system; writes no results")
    args = parser.parse_args(argv)
    reps, seconds = (1, 15.0) if args.smoke else (args.reps, args.seconds)
    machine = machine_description()
    print(machine_line(machine))
    load = os.getloadavg()
    sections, verdicts, record = [], [], dict(machine=machine, reps=reps, seconds=seconds, load_before=load)
    with tempfile.TemporaryDirectory(prefix="pysf_multi_policy_") as scratch_dir:
        scratch = Path(scratch_dir)
        if "mixing" in args.parts:
            mixing = run_part("mixing", mixing_systems(args.policies), reps=reps, seconds=seconds, scratch=scratch)
            names = list(mixing["systems"])
            headers, rows = table(mixing, names[0], f"vs {names[0]}")
            print()
            print_table(headers, rows)
            four = next((n for n in names if n.startswith("4 ")), None)
            if four is not None:
                ratio = ratio_of(mixing, four, names[0])
                verdicts.append(f"4 policies >= {MIXING_TARGET} of 1 policy's frames/s: "
                                f"{'met' if ratio is not None and ratio >= MIXING_TARGET else 'MISSED'} ({fmt(ratio, '{:.2f}')})")
            sections.append(("Mixing policies in one env: native `ConnectFour-v0` self-play", mixing, headers, rows))
        if "side_by_side" in args.parts:
            side = run_part("side_by_side", *side_by_side_systems(args.peers_dir, scratch), reps=reps, seconds=seconds,
                            scratch=scratch)
            headers, rows = table(side, "sample-factory", "vs Sample Factory")
            print()
            print_table(headers, rows)
            ratio = ratio_of(side, "pysf", "sample-factory")
            verdicts.append(f"pysf >= {VS_SF_TARGET:.0f}x Sample Factory on its 2-policy multi-agent example: "
                            f"{'met' if ratio is not None and ratio >= VS_SF_TARGET else 'MISSED'} ({fmt(ratio, '{:.2f}')}x)")
            sections.append((f"Sample Factory's `{MULTI_ENV_EXAMPLE}` with 2 policies, side by side", side, headers, rows))
    for verdict in verdicts:
        print(verdict)
    if args.smoke:
        return 0
    record["parts"] = {title: [vars(run) | {"curve": [], "progress": []} for run in result["runs"]]
                       for title, result, _, _ in sections}
    save_json("multi_policy", record)
    body = ["## Several policies (`python -m benchmarks.multi_policy`)", "", machine_line(machine), "",
            f"{reps} runs of {seconds:.0f} s per system, alternating, each a fresh process; steady env frames/s (start-up "
            f"excluded). Load average before the runs: {load[0]:.2f}."]
    for title, result, headers, rows in sections:
        body += ["", f"### {title}", ""]
        body += [f"- `{system.describe}`" for system in result["systems"].values()]
        body += ["", markdown_table(headers, rows)]
    body += [""] + [f"- {verdict}." for verdict in verdicts]
    update_results_section("multi_policy", "\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
