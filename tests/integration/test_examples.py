"""The Sample-Factory-style example scripts run end to end (short runs)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO_ROOT


def run_example(tmp_path, script: str, *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / script), "--train_dir", str(tmp_path), "--experiment", "ex", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Result:" in result.stdout
    assert list((tmp_path / "ex" / "checkpoint_p0").glob("checkpoint_*.pth"))
    return result.stdout


@pytest.mark.slow
def test_custom_env_custom_model_example(tmp_path):
    run_example(
        tmp_path, "train_custom_env_custom_model.py", "--env", "my_custom_env_v1", "--train_for_env_steps", "10000",
        "--custom_env_episode_len", "50",
    )


@pytest.mark.slow
def test_train_gym_env_example_then_export_it_to_onnx(tmp_path):
    output = run_example(tmp_path, "train_gym_env.py", "--env", "CartPole-v1", "--train_for_env_steps", "10000")
    assert "env=CartPole-v1" in output and "env_backend=auto" in output
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "export_onnx_gym_env.py"), "--env", "CartPole-v1", "--experiment", "ex",
         "--train_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "ex.onnx").is_file() and "inputs ['obs']" in result.stdout


@pytest.mark.slow
def test_pettingzoo_classic_example_plays_tictactoe_with_two_policies(tmp_path):
    pytest.importorskip("pettingzoo")
    output = run_example(tmp_path, "train_pettingzoo_classic.py", "--env", "tictactoe_v3", "--num_policies", "2",
                         "--train_for_env_steps", "20000", "--num_envs_per_worker", "8")
    assert "Win rate (policy, opponent policy, rate)" in output
    assert list((tmp_path / "ex" / "checkpoint_p1").glob("checkpoint_*.pth"))


@pytest.mark.slow
@pytest.mark.parametrize("vector_envs", [0, 4], ids=["one_game_per_env", "ale_vector_env"])
def test_atari_example_trains_pong_both_ways(tmp_path, vector_envs):
    pytest.importorskip("ale_py")
    workers = ["--num_workers", "1"] if vector_envs else ["--num_workers", "2", "--num_envs_per_worker", "1"]
    output = run_example(
        tmp_path, "train_atari.py", "--env", "atari_pong", "--atari_vector_envs", str(vector_envs), *workers,
        "--rollout", "32", "--batch_size", "128", "--num_batches_per_epoch", "1", "--num_epochs", "1",
        "--train_for_env_steps", "2048",
    )
    assert "encoder_conv_architecture=convnet_atari" in output and "obs_scale=255.0" in output
    assert f"batched_sampling={vector_envs > 0}" in output


def _random_policy_return(env_id: str, episodes: int, seed: int = 0) -> float:
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id)
    env.action_space.seed(seed)
    returns = []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


@pytest.mark.slow
def test_mujoco_example_learns_halfcheetah(tmp_path, monkeypatch):
    """Sample Factory's MuJoCo settings on HalfCheetah-v5, 2 workers instead of 8 and a constant learning rate:
    the policy beats random actions clearly within 200k env steps, about 6k frames/s here. The settings' linear
    decay, made for 10M steps, takes the rate to 0 within these 200k: runs ended at -184, -139 and -28 (random
    actions: -210 to -255), while a constant rate ended at +98, +147 and +297 (and at -167 to -185 after 120k).
    The result averages the last 16 episodes (--stats_avg), one per env: the policy at the end, not its history."""
    pytest.importorskip("mujoco")
    output = run_example(
        tmp_path, "train_mujoco.py", "--env", "mujoco_halfcheetah", "--num_workers", "2", "--seed", "0",
        "--train_for_env_steps", "200000", "--stats_avg", "16", "--lr_schedule", "constant",
    )
    assert "env=mujoco_halfcheetah" in output and "nonlinearity=tanh" in output and "async_rl=False" in output
    final = float(output.split("final 16-episode mean reward ", 1)[1].split()[0])
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT into the working directory
    random_return = _random_policy_return("HalfCheetah-v5", episodes=3)
    assert final > random_return + 100.0, (final, random_return)  # random actions: -210 to -255, sd 45 per episode
    print(f"HalfCheetah-v5: {final} after 200k steps, random actions {random_return:.1f}")


# ---- VizDoom ----------------------------------------------------------------------------------------------


@pytest.fixture
def vizdoom_example(tmp_path, monkeypatch):
    """examples/train_vizdoom.py as a module, run from a scratch folder (vizdoom writes _vizdoom.ini there)."""
    pytest.importorskip("vizdoom")
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(REPO_ROOT / "examples"))
    try:
        import train_vizdoom
    finally:
        sys.path.pop(0)
    return train_vizdoom


def test_vizdoom_example_trains_doom_basic(tmp_path):
    pytest.importorskip("vizdoom")
    output = run_example(
        tmp_path, "train_vizdoom.py", "--env", "doom_basic", "--num_workers", "1", "--num_envs_per_worker", "4",
        "--batch_size", "256", "--train_for_env_steps", "4096",
    )
    assert "exploration_loss=symmetric_kl" in output and "obs_scale=255.0" in output and "res_w=128" in output
    evaluation = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "enjoy_vizdoom.py"), "--env", "doom_basic", "--experiment", "ex",
         "--train_dir", str(tmp_path), "--no_render", "--max_num_episodes", "2"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert evaluation.returncode == 0, evaluation.stdout[-3000:] + evaluation.stderr[-3000:]
    assert "Avg episode rewards" in evaluation.stdout + evaluation.stderr


def test_vizdoom_envs_are_sample_factorys_doom_stack(vizdoom_example):
    example = vizdoom_example
    cfg = example.parse_doom_args(["--env", "doom_basic", "--experiment", "x"])
    env = example.make_doom_env("doom_basic", cfg)
    try:
        assert env.observation_space.shape == (3, 72, 128) and env.observation_space.dtype == np.uint8
        assert env.action_space.n == 4  # nothing, then MOVE_LEFT, MOVE_RIGHT, ATTACK alone
        obs, _ = env.reset(seed=3)
        assert obs.shape == (3, 72, 128) and obs.dtype == np.uint8 and obs.max() > obs.min()
        obs, reward, terminated, truncated, info = env.step(0)
        # basic.cfg: a living reward of -1 per tic, 4 tics per step, scaled by 0.01
        assert reward == pytest.approx(-0.04) and info["num_frames"] == 4 and not (terminated or truncated)
        steps = 1
        while not (terminated or truncated):
            obs, reward, terminated, truncated, info = env.step(0)
            steps += 1
        assert truncated and not terminated and steps == 300 // 4  # episode_timeout = 300 tics, an idle player
        assert obs.shape == (3, 72, 128)
    finally:
        env.close()
    with pytest.raises(ValueError, match="unknown Doom env 'doom_nope'; this example has doom_basic, "):
        example.make_doom_env("doom_nope", cfg)


def test_health_gathering_shaping_rewards_each_health_gain_and_reports_the_unshaped_return(vizdoom_example):
    example = vizdoom_example
    import gymnasium as gym

    class HealthScript(gym.Env):
        observation_space = gym.spaces.Box(0, 1, (1,))
        action_space = gym.spaces.Discrete(1)
        healths = [100.0, 92.0, 100.0, 100.0, 84.0, 96.0]

        def reset(self, *, seed=None, options=None):
            self.t = 0
            return np.zeros(1, np.float32), {"HEALTH": self.healths[0]}

        def step(self, action):
            self.t += 1
            done = self.t == len(self.healths) - 1
            return np.zeros(1, np.float32), 1.0, done, False, {"HEALTH": self.healths[self.t]}

    env = example.HealthGatheringShaping(HealthScript())
    env.reset()
    rewards, info = [], {}
    for _ in range(5):
        _, reward, terminated, _, info = env.step(0)
        rewards.append(reward)
    assert rewards == [1.0, 2.0, 1.0, 1.0, 1.0]  # +1 when health rose (92 -> 100); none on the final step
    assert terminated and info["true_objective"] == 5.0


def test_doom_health_gathering_steps_with_its_shaping(vizdoom_example):
    example = vizdoom_example
    cfg = example.parse_doom_args(["--env", "doom_health_gathering", "--experiment", "x", "--res_w", "64", "--res_h", "48"])
    env = example.make_doom_env("doom_health_gathering", cfg)
    try:
        # nothing, then TURN_LEFT, TURN_RIGHT, MOVE_FORWARD, MOVE_BACKWARD alone (Sample Factory's buttons)
        assert env.observation_space.shape == (3, 48, 64) and env.action_space.n == 5
        _, info = env.reset(seed=0)
        assert 0 < info["HEALTH"] <= 100.0
        total, steps, done = 0.0, 0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(3)  # forward, over the acid floor and into medkits
            total, steps = total + reward, steps + 1
            done = terminated or truncated
        # Sample Factory's rewards: 0.01 per tic alive, nothing for dying, +1 per medkit (the shaping)
        assert terminated and info["true_objective"] == pytest.approx(0.01 * 4 * steps, abs=0.05)
        assert total == pytest.approx(info["true_objective"] + round(total - info["true_objective"]))
    finally:
        env.close()
