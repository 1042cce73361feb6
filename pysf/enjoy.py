"""Evaluate a trained policy (Sample Factory's ``sample_factory.enjoy``): ``enjoy(cfg)`` / ``python -m pysf.enjoy``.

Loads the experiment's ``config.json`` (flags passed now win), builds the model, loads the latest (or,
with ``--load_checkpoint_kind=best``, the best) checkpoint and runs episodes in one env until
``--max_num_episodes`` or ``--max_num_frames``. ``--eval_deterministic`` takes the most likely actions,
``--no_render`` skips rendering, ``--save_video`` writes ``replay.mp4`` (or ``--video_name``) into the
experiment folder for envs that render ``rgb_array``. A native env renders through gymnasium's
implementation of the same id (pysf's native envs reproduce it exactly).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from typing import Any, Deque, List, Optional, Tuple

import numpy as np
import torch

from pysf.algo.inference.policy_module import make_inference_module
from pysf.algo.sampling.rollout_worker import ActionDecoder, per_agent_infos
from pysf.algo.utils.checkpoints import UnreadableCheckpointsError, checkpoint_dir, checkpoints, load_latest_checkpoint
from pysf.algo.utils.env_info import obtain_env_info
from pysf.algo.utils.make_env import BatchedVecEnv, make_env_func_batched
from pysf.algo.utils.misc import ExperimentStatus
from pysf.model.actor_critic import create_actor_critic
from pysf.model.model_utils import get_rnn_size
from pysf.utils.attr_dict import AttrDict
from pysf.utils.typing import Config

log = logging.getLogger("pysf")


def make_env(cfg: Config, render_mode: Optional[str] = None) -> BatchedVecEnv:
    """The env to evaluate in, as Sample Factory's enjoy makes it: the registered/gymnasium env (a native env's
    gymnasium twin) as a batched multi-agent env that resets itself (``make_env_func_batched``)."""
    return make_env_func_batched(cfg, AttrDict(worker_index=0, vector_index=0, env_id=0), render_mode=render_mode)


def _write_video(frames: List[np.ndarray], path: str, fps: int) -> None:
    try:
        import imageio.v2 as imageio
    except ImportError as exc:
        raise RuntimeError("--save_video needs imageio and imageio-ffmpeg: pip install imageio imageio-ffmpeg") from exc
    imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)
    log.info("Replay video saved to %s", path)


def load_state_dict(cfg: Config, actor_critic: Any, device: torch.device) -> None:
    """Load the experiment's latest (``--load_checkpoint_kind=best``: best) checkpoint of policy
    ``--policy_index`` into ``actor_critic`` (Sample Factory's helper).

    Raises:
        FileNotFoundError: the experiment has no checkpoint of that kind.
        pysf.algo.utils.checkpoints.UnreadableCheckpointsError: it has some, but none is readable.
    """
    directory = checkpoint_dir(os.path.join(cfg.train_dir, cfg.experiment), int(getattr(cfg, "policy_index", 0)))
    kind = getattr(cfg, "load_checkpoint_kind", "latest")
    state = load_latest_checkpoint(directory, kind, map_location=str(device))
    if state is None:
        if kind == "best" and checkpoints(directory, "latest"):
            raise FileNotFoundError(
                f"No best checkpoint in {directory} (one is saved once --save_best_after env steps were trained and "
                f"the reward improved); the regular ones can be loaded with --load_checkpoint_kind=latest"
            )
        raise FileNotFoundError(f"No checkpoint in {directory}: train first (python -m pysf.train ...)")
    actor_critic.load_state_dict(state["model"])


def _eval_action_repeat(cfg: Config) -> int:
    """``--eval_env_frameskip``: the env is made with this frameskip and each action is repeated to make up
    the training frameskip (Sample Factory's rule); sets ``cfg.env_frameskip`` for env creation."""
    eval_frameskip = cfg.env_frameskip if cfg.eval_env_frameskip is None else cfg.eval_env_frameskip
    if eval_frameskip < 1 or cfg.env_frameskip % eval_frameskip != 0:
        raise ValueError(
            f"--env_frameskip={cfg.env_frameskip} must be a multiple of --eval_env_frameskip={eval_frameskip}"
        )
    repeat = cfg.env_frameskip // eval_frameskip
    cfg.env_frameskip = cfg.eval_env_frameskip = eval_frameskip
    return repeat


def _render(cfg: Config, env: Any, render_mode: Optional[str], frames: List[np.ndarray], episodes: int, last: float) -> float:
    """One frame to the video or the screen (``--fps`` pacing); returns when this render started."""
    start = time.time()
    if render_mode == "rgb_array":
        if len(frames) < cfg.video_frames or (cfg.video_frames < 0 and episodes == 0):
            frame = env.render()
            if frame is not None:
                frames.append(np.array(frame, copy=True))
    elif render_mode == "human":
        if cfg.fps > 0:
            time.sleep(max(0.0, 1.0 / cfg.fps - (start - last)))
        env.render()
    return start


def enjoy(cfg: Config) -> Tuple[int, float]:
    """Run the trained policy; returns ``(status, average reward of the last 100 episodes)``.

    Frame accounting as in Sample Factory: it runs while at most ``--max_num_frames`` frames were stepped (so
    the episode running at the limit is finished), and stops once ``--max_num_episodes`` episodes ended (checked
    after each action, including its repeats).
    """
    from pysf.utils.utils import setup_logging
    from pysf.cfg.arguments import load_from_checkpoint

    setup_logging()
    cfg = load_from_checkpoint(cfg)
    if getattr(cfg, "push_to_hub", False):
        raise NotImplementedError(
            "--push_to_hub is not available in pysf yet (it needs the Hugging Face Hub client and network access). "
            "Evaluate without it and upload the experiment folder with huggingface_hub yourself."
        )
    if getattr(cfg, "csv_folder_name", None) is not None or getattr(cfg, "sample_env_episodes", 256) != 256:
        raise NotImplementedError(
            "--sample_env_episodes and --csv_folder_name belong to Sample Factory's fast parallel evaluation "
            "(sample_factory.eval), which pysf does not have yet. enjoy evaluates in one env: use --max_num_episodes."
        )
    action_repeat = _eval_action_repeat(cfg)
    experiment_dir = os.path.join(cfg.train_dir, cfg.experiment)
    env_info = obtain_env_info(cfg)
    actor_critic = create_actor_critic(cfg, env_info.obs_space, env_info.action_space)
    try:
        load_state_dict(cfg, actor_critic, torch.device("cpu"))
    except (FileNotFoundError, UnreadableCheckpointsError) as exc:
        log.error("%s", exc)
        return ExperimentStatus.FAILURE, float("nan")
    # The same module the native core runs (casts, normalizes, masks, argmax when deterministic), eagerly.
    policy = make_inference_module(actor_critic.eval(), env_info.obs_space)

    render_mode = None
    if cfg.save_video:
        render_mode = "rgb_array"
    elif not cfg.no_render:
        render_mode = "human"
    env = make_env(cfg, render_mode=render_mode)
    if hasattr(env.unwrapped, "reset_on_init"):
        env.unwrapped.reset_on_init = False  # a reset here would spoil e.g. VizDoom's demo recording
    num_agents = env.num_agents
    decoder = ActionDecoder(env_info.action_space)
    # What the env's step takes, as the env workers pass it: one batch with --batched_sampling, else one
    # action per agent (the 1-agent wrapper of a single-agent env steps it with the first).
    decode_actions = decoder.batch_decoder() if env.is_multiagent and cfg.batched_sampling else decoder.rows_decoder()
    rnn_states = torch.zeros(num_agents, get_rnn_size(cfg))
    frames: List[np.ndarray] = []
    episode_rewards: List[Deque[float]] = [deque(maxlen=100) for _ in range(num_agents)]
    true_objectives: List[Deque[float]] = [deque(maxlen=100) for _ in range(num_agents)]
    running_reward = np.zeros(num_agents)
    finished_episode = np.zeros(num_agents, dtype=bool)
    num_frames, num_episodes = 0, 0
    obs, _ = env.reset(seed=cfg.seed)
    last_render = time.time()
    with torch.no_grad():
        while num_frames <= cfg.max_num_frames:
            result = policy(obs, rnn_states, bool(cfg.eval_deterministic))
            rnn_states = result["new_rnn_states"].clone()
            actions = decode_actions(result["actions"].float().reshape(num_agents, -1).numpy())
            for _ in range(action_repeat):
                last_render = _render(cfg, env, render_mode, frames, num_episodes, last_render)
                # The env resets itself at an episode's end; remaining repeats of this action go to the new
                # episode, as in Sample Factory.
                obs, rewards, terminated, truncated, infos = env.step(actions)
                running_reward += rewards.double().numpy()
                num_frames += 1
                if num_frames % 100 == 0:
                    log.debug("Num frames %d...", num_frames)
                dones = np.logical_or(terminated.numpy(), truncated.numpy())
                if not dones.any():
                    continue
                infos = per_agent_infos(infos, num_agents)
                for agent in np.flatnonzero(dones):
                    info = infos[agent] if isinstance(infos[agent], dict) else {}
                    episode_rewards[agent].append(float(running_reward[agent]))
                    true_objectives[agent].append(float(info.get("true_objective", running_reward[agent])))
                    running_reward[agent] = 0.0
                    rnn_states[agent] = 0.0
                    finished_episode[agent] = True
                    # With --use_record_episode_statistics an episode is a whole game, not one of its lives.
                    if not cfg.use_record_episode_statistics or "episode" in info or "episode/r" in info:
                        num_episodes += 1
                if dones.all():
                    _render(cfg, env, render_mode, frames, num_episodes, last_render)
                    if render_mode == "human":
                        time.sleep(0.05)  # a short pause between episodes on screen
                if finished_episode.all():
                    finished_episode[:] = False
                    _log_averages(episode_rewards, true_objectives)
            if num_episodes >= cfg.max_num_episodes:
                break
    env.close()
    if cfg.save_video and frames:
        _write_video(frames, os.path.join(experiment_dir, cfg.video_name or "replay.mp4"), cfg.fps if cfg.fps > 0 else 30)
    log.info("Num frames %d...", num_frames)
    finished = sum(len(rewards) for rewards in episode_rewards)
    if finished == 0:
        log.warning("No episode finished within --max_num_frames=%d frames: no average reward", cfg.max_num_frames)
        return ExperimentStatus.SUCCESS, float("nan")
    return ExperimentStatus.SUCCESS, sum(sum(rewards) for rewards in episode_rewards) / finished


def _log_averages(episode_rewards: List[Deque[float]], true_objectives: List[Deque[float]]) -> None:
    """Sample Factory's two lines: each agent's average of its last 100 episodes, then the mean over agents."""
    def per_agent(values: List[Deque[float]]) -> str:
        return ", ".join(f"#{agent}: {np.mean(v):.3f}" for agent, v in enumerate(values) if v)

    log.info("Avg episode rewards: %s, true rewards: %s", per_agent(episode_rewards), per_agent(true_objectives))
    log.info(
        "Avg episode reward: %.3f, avg true_objective: %.3f",
        float(np.mean([np.mean(v) for v in episode_rewards])), float(np.mean([np.mean(v) for v in true_objectives])),
    )


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pysf.enjoy --env ... --experiment ... [--no_render] [--max_num_episodes N]``."""
    from pysf.train import parse_train_args

    status, _ = enjoy(parse_train_args(argv, evaluation=True))
    return status


if __name__ == "__main__":
    sys.exit(main())
