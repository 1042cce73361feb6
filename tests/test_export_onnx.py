"""ONNX export (pysf.export_onnx): onnxruntime reproduces the eager pysf policy, batch 1 and 7, RNNs included.

Experiments are written the way pysf writes them (config.json + checkpoint_p0/), from freshly built models
whose normalizer statistics are made non-trivial, so that a normalizer left out of the graph shows up; the
command-line test trains a real (tiny) experiment first.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import gymnasium as gym
import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from pysf.algo.inference.policy_module import InferencePolicy, make_inference_module  # noqa: E402
from pysf.algo.utils.checkpoints import checkpoint_dir, load_latest_checkpoint, save_checkpoint  # noqa: E402
from pysf.algo.utils.env_info import obtain_env_info  # noqa: E402
from pysf.algo.utils.misc import ExperimentStatus  # noqa: E402
from pysf.cfg.arguments import load_from_checkpoint, parse_args  # noqa: E402
from pysf.cfg.experiment import save_config  # noqa: E402
from pysf.enjoy import make_env  # noqa: E402
from pysf.envs.env_utils import register_env  # noqa: E402
from pysf.model.actor_critic import create_actor_critic  # noqa: E402
from pysf.model.model_utils import get_rnn_size  # noqa: E402
from pysf.utils.utils import experiment_dir  # noqa: E402

import pysf.export_onnx as export_module  # noqa: E402
from pysf.export_onnx import (  # noqa: E402
    OnnxExporter,
    create_onnx_exporter,
    export_onnx,
    generate_args,
    generate_rnn_states,
    patch_forward,
)

from helpers import REPO_ROOT  # noqa: E402

BATCH_SIZES = (1, 7)
IMAGE_ENV = "onnx_test_image_env"
TUPLE_ENV = "onnx_test_tuple_env"
NUM_IMAGE_ACTIONS = 5


class ImageMaskEnv(gym.Env):
    """Dict observations: a (3, 16, 16) uint8 image, a float vector and an action mask."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Dict(
            image=gym.spaces.Box(0, 255, (3, 16, 16), np.uint8),
            vector=gym.spaces.Box(-1.0, 1.0, (4,), np.float32),
            action_mask=gym.spaces.Box(0, 1, (NUM_IMAGE_ACTIONS,), np.int8),
        )
        self.action_space = gym.spaces.Discrete(NUM_IMAGE_ACTIONS)

    def reset(self, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def make_image_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return ImageMaskEnv()


class TupleActionEnv(gym.Env):
    """Box observations, Tuple(Discrete(3, start=1), Box(2,)) actions."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)
        self.action_space = gym.spaces.Tuple([gym.spaces.Discrete(3, start=1), gym.spaces.Box(-1.0, 1.0, (2,), np.float32)])

    def reset(self, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def make_tuple_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return TupleActionEnv()


@pytest.fixture(autouse=True)
def test_envs(fresh_context):  # tests/conftest.py
    register_env(IMAGE_ENV, make_image_env)
    register_env(TUPLE_ENV, make_tuple_env)


# ---- helpers -----------------------------------------------------------------------------------


def make_experiment(train_dir: Path, env: str, *flags: str, experiment: str = "exp") -> List[str]:
    """config.json + one checkpoint of a freshly built model with non-trivial normalizer statistics.

    Returns the evaluation argv that points at it.
    """
    argv = ["--env", env, "--experiment", experiment, "--train_dir", str(train_dir), *flags]
    cfg = parse_args(argv)
    env_info = obtain_env_info(cfg)
    torch.manual_seed(0)
    actor_critic = create_actor_critic(cfg, env_info.obs_space, env_info.action_space)
    state = actor_critic.state_dict()
    for key, value in state.items():
        if key.endswith("running_mean") and key.startswith("obs_normalizer"):
            value.copy_(torch.randn_like(value))
        elif key.endswith("running_var") and key.startswith("obs_normalizer"):
            value.copy_(torch.rand_like(value) * 3 + 0.2)
    save_config(cfg)
    save_checkpoint({"model": state, "train_step": 3, "env_steps": 96}, checkpoint_dir(experiment_dir(cfg)), keep=2)
    return argv


def reference_policy(eval_argv: List[str]) -> Tuple[InferencePolicy, object]:
    """The eager policy loaded from the experiment, independently of pysf.export_onnx."""
    cfg = load_from_checkpoint(parse_args(eval_argv, evaluation=True))
    env_info = obtain_env_info(cfg)
    actor_critic = create_actor_critic(cfg, env_info.obs_space, env_info.action_space)
    state = load_latest_checkpoint(checkpoint_dir(experiment_dir(cfg, mkdir=False)))
    actor_critic.load_state_dict(state["model"])
    return make_inference_module(actor_critic.eval(), env_info.obs_space), cfg


def export(tmp_path: Path, eval_argv: List[str], name: str = "model.onnx") -> "ort.InferenceSession":
    path = tmp_path / name
    assert export_onnx(parse_args(eval_argv, evaluation=True), str(path)) == ExperimentStatus.SUCCESS
    onnx.checker.check_model(onnx.load(str(path)))
    assert not (tmp_path / f"{name}.data").exists(), "weights must be inside the .onnx file"
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def random_inputs(obs_space: gym.spaces.Dict, batch_size: int) -> Dict[str, torch.Tensor]:
    inputs = generate_args(obs_space, batch_size)
    if "action_mask" in inputs:
        # At least one allowed action per row, so that the mask decides something.
        mask = (torch.rand(batch_size, NUM_IMAGE_ACTIONS) < 0.4).to(torch.int8)
        mask[torch.arange(batch_size), torch.randint(NUM_IMAGE_ACTIONS, (batch_size,))] = 1
        inputs["action_mask"] = mask
    return inputs


def run(session, inputs: Dict[str, torch.Tensor]) -> Dict[str, np.ndarray]:
    outputs = session.run(None, {name: tensor.numpy() for name, tensor in inputs.items()})
    return {meta.name: value for meta, value in zip(session.get_outputs(), outputs)}


def eager(policy: InferencePolicy, inputs: Dict[str, torch.Tensor], rnn_states: torch.Tensor, deterministic=True):
    with torch.no_grad():
        obs = {k: v for k, v in inputs.items() if k != "rnn_states"}
        return policy(obs, rnn_states, deterministic)


# ---- parity with the eager model ----------------------------------------------------------------


def test_mlp_discrete_matches_eager_for_batches_1_and_7(tmp_path):
    eval_argv = make_experiment(tmp_path, "CartPole-v1", "--use_rnn", "False") + ["--eval_deterministic", "True"]
    session = export(tmp_path, eval_argv)
    assert [i.name for i in session.get_inputs()] == ["obs"]
    assert [o.name for o in session.get_outputs()] == ["output_actions"]
    assert isinstance(session.get_inputs()[0].shape[0], str), "the batch dimension must be dynamic"

    policy, cfg = reference_policy(eval_argv)
    exporter = create_onnx_exporter(cfg, make_env(cfg), enable_jit=True)  # Sample Factory's own check
    for batch_size in BATCH_SIZES:
        inputs = generate_args(exporter.env_info.obs_space, batch_size)
        inputs["obs"] = inputs["obs"] * 3  # beyond CartPole's usual range: normalization matters
        actions = run(session, inputs)["output_actions"]
        expected = eager(policy, inputs, generate_rnn_states(cfg, batch_size))["actions"]
        assert actions.shape == (batch_size,) and actions.dtype == np.int32
        np.testing.assert_array_equal(actions, expected.numpy())
        with torch.no_grad():
            np.testing.assert_array_equal(actions, exporter(**inputs).numpy())


@pytest.mark.parametrize(
    "flags",
    [
        ("--rnn_type", "gru"),
        ("--rnn_type", "lstm", "--actor_critic_share_weights", "False"),
    ],
    ids=["gru", "lstm-separate-weights"],
)
def test_rnn_matches_eager_over_steps_with_a_dynamic_batch(tmp_path, flags):
    eval_argv = make_experiment(
        tmp_path, "CartPole-v1", "--use_rnn", "True", "--rnn_size", "32", "--encoder_mlp_layers", "32", *flags
    ) + ["--eval_deterministic", "True"]
    session = export(tmp_path, eval_argv)
    policy, cfg = reference_policy(eval_argv)
    rnn_size = get_rnn_size(cfg)
    assert [i.name for i in session.get_inputs()] == ["obs", "rnn_states"]
    assert [o.name for o in session.get_outputs()] == ["output_actions", "output_rnn_states"]

    for batch_size in BATCH_SIZES:
        rnn_states = torch.randn(batch_size, rnn_size) * 0.5
        onnx_states = rnn_states.numpy()
        for _ in range(3):
            inputs = generate_args(cfg_obs_space(cfg), batch_size)
            outputs = run(session, {**inputs, "rnn_states": torch.from_numpy(onnx_states)})
            expected = eager(policy, inputs, rnn_states)
            np.testing.assert_array_equal(outputs["output_actions"], expected["actions"].numpy())
            assert outputs["output_rnn_states"].shape == (batch_size, rnn_size)
            np.testing.assert_allclose(outputs["output_rnn_states"], expected["new_rnn_states"].numpy(), atol=1e-5)
            onnx_states, rnn_states = outputs["output_rnn_states"], expected["new_rnn_states"]


def cfg_obs_space(cfg) -> gym.spaces.Dict:
    return obtain_env_info(cfg).obs_space


def test_image_dict_observations_with_action_mask(tmp_path):
    eval_argv = make_experiment(
        tmp_path,
        IMAGE_ENV,
        "--use_rnn", "False",
        "--encoder_conv_architecture", "resnet_impala",  # max-pooling stages fit 16x16 (convnet_simple does not)
        "--encoder_conv_mlp_layers", "32",
        "--encoder_mlp_layers", "16",
    ) + ["--eval_deterministic", "True"]  # fmt: skip
    session = export(tmp_path, eval_argv)
    policy, cfg = reference_policy(eval_argv)
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        ("image", "tensor(uint8)"),
        ("vector", "tensor(float)"),
        ("action_mask", "tensor(int8)"),
    ]
    for batch_size in BATCH_SIZES:
        inputs = random_inputs(cfg_obs_space(cfg), batch_size)
        actions = run(session, inputs)["output_actions"]
        np.testing.assert_array_equal(actions, eager(policy, inputs, generate_rnn_states(cfg, batch_size))["actions"].numpy())
        assert (inputs["action_mask"].numpy()[np.arange(batch_size), actions] == 1).all(), "a masked action was chosen"


def test_continuous_actions_match_eager_means(tmp_path):
    eval_argv = make_experiment(tmp_path, "Pendulum-v1", "--use_rnn", "False", "--encoder_mlp_layers", "32") + [
        "--eval_deterministic",
        "True",
    ]
    session = export(tmp_path, eval_argv, name="new_folder/pendulum.onnx")  # missing folders are created
    policy, cfg = reference_policy(eval_argv)
    for batch_size in BATCH_SIZES:
        inputs = generate_args(cfg_obs_space(cfg), batch_size)
        actions = run(session, inputs)["output_actions"]
        expected = eager(policy, inputs, generate_rnn_states(cfg, batch_size))["actions"]
        assert actions.shape == (batch_size, 1) and actions.dtype == np.float32  # Box(1,): [B, 1] as in SF
        np.testing.assert_allclose(actions, expected.numpy().reshape(batch_size, 1), rtol=1e-5, atol=1e-6)


def test_tuple_actions_have_one_output_per_component(tmp_path):
    eval_argv = make_experiment(tmp_path, TUPLE_ENV, "--use_rnn", "False", "--encoder_mlp_layers", "16") + [
        "--eval_deterministic",
        "True",
    ]
    session = export(tmp_path, eval_argv)
    policy, cfg = reference_policy(eval_argv)
    assert [o.name for o in session.get_outputs()] == ["output_actions_0", "output_actions_1"]
    for batch_size in BATCH_SIZES:
        inputs = generate_args(cfg_obs_space(cfg), batch_size)
        outputs = run(session, inputs)
        expected = eager(policy, inputs, generate_rnn_states(cfg, batch_size))["actions"].numpy()  # [B, 1 + 2]
        discrete, continuous = outputs["output_actions_0"], outputs["output_actions_1"]
        assert discrete.shape == (batch_size,) and discrete.dtype == np.int32
        np.testing.assert_array_equal(discrete, expected[:, 0].astype(np.int32) + 1)  # Discrete(start=1): env values
        assert continuous.shape == (batch_size, 2) and continuous.dtype == np.float32
        np.testing.assert_allclose(continuous, expected[:, 1:], rtol=1e-5, atol=1e-6)


# ---- sampled actions (the default, --eval_deterministic False) ---------------------------------


def test_sampled_discrete_actions_follow_the_policy_probabilities(tmp_path):
    eval_argv = make_experiment(tmp_path, "CartPole-v1", "--use_rnn", "False", "--encoder_mlp_layers", "32")
    session = export(tmp_path, eval_argv)
    policy, cfg = reference_policy(eval_argv)
    num_rows = 20000
    inputs = {"obs": torch.tensor([[0.1, -0.5, 0.05, 0.8]]).repeat(num_rows, 1)}
    actions = run(session, inputs)["output_actions"]
    logits = eager(policy, {"obs": inputs["obs"][:1]}, generate_rnn_states(cfg, 1))["action_logits"]
    expected_p1 = float(torch.softmax(logits, -1)[0, 1])
    assert set(np.unique(actions)) <= {0, 1}
    # Binomial std at 20000 rows is <= 0.0036: 0.02 is > 5 sigma.
    assert abs(float(actions.mean()) - expected_p1) < 0.02, (actions.mean(), expected_p1)
    assert 0.02 < expected_p1 < 0.98, "the check needs an undecided policy"


def test_sampled_continuous_actions_follow_the_gaussian(tmp_path):
    eval_argv = make_experiment(tmp_path, "Pendulum-v1", "--use_rnn", "False", "--encoder_mlp_layers", "32")
    session = export(tmp_path, eval_argv)
    policy, cfg = reference_policy(eval_argv)
    num_rows = 20000
    inputs = {"obs": torch.tensor([[0.3, -0.9, 1.5]]).repeat(num_rows, 1)}
    actions = run(session, inputs)["output_actions"][:, 0]
    params = eager(policy, {"obs": inputs["obs"][:1]}, generate_rnn_states(cfg, 1))["action_logits"][0]
    mean, std = float(params[0]), float(params[1].exp())
    assert abs(float(actions.mean()) - mean) < 5 * std / np.sqrt(num_rows)
    assert abs(float(actions.std()) / std - 1.0) < 0.05


# ---- the command line, on a trained experiment ---------------------------------------------------


@pytest.fixture(scope="module")
def trained_experiment(tmp_path_factory) -> Path:
    """A tiny real training run of CartPole-v1 (an MLP, a couple of seconds)."""
    work_dir = tmp_path_factory.mktemp("onnx_cli")
    flags = "--num_workers 1 --num_envs_per_worker 8 --batch_size 256 --train_for_env_steps 2048"
    command = [sys.executable, "-m", "pysf.train", "--env", "CartPole-v1", "--experiment", "x", "--train_dir", "td"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    subprocess.run(command + flags.split(), cwd=work_dir, env=env, check=True, capture_output=True, timeout=300)
    return work_dir


@pytest.mark.slow
def test_command_line_writes_experiment_onnx_in_the_current_directory(trained_experiment):
    work_dir = trained_experiment
    command = [sys.executable, "-m", "pysf.export_onnx", "--env", "CartPole-v1", "--experiment", "x", "--train_dir", "td"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        command + ["--eval_deterministic", "True"], cwd=work_dir, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    path = work_dir / "x.onnx"
    assert f"ONNX model written to {path}" in done.stdout
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    eval_argv = ["--env", "CartPole-v1", "--experiment", "x", "--train_dir", str(work_dir / "td")]
    policy, cfg = reference_policy(eval_argv)
    inputs = generate_args(cfg_obs_space(cfg), 7)
    actions = run(session, inputs)["output_actions"]
    np.testing.assert_array_equal(actions, eager(policy, inputs, generate_rnn_states(cfg, 7))["actions"].numpy())


def test_command_line_without_experiment_fails_with_a_message(tmp_path):
    command = [sys.executable, "-m", "pysf.export_onnx", "--env", "CartPole-v1", "--experiment", "nothing_here"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        command + ["--train_dir", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == ExperimentStatus.FAILURE
    assert "config.json" in done.stdout + done.stderr
    assert not list(tmp_path.glob("*.onnx"))


# ---- errors and helpers --------------------------------------------------------------------------


def test_experiment_without_checkpoint_is_a_failure(tmp_path, caplog):
    argv = make_experiment(tmp_path, "CartPole-v1", "--use_rnn", "False")
    for stale in (tmp_path / "exp" / "checkpoint_p0").glob("*.pth"):
        stale.unlink()
    assert export_onnx(parse_args(argv, evaluation=True), str(tmp_path / "m.onnx")) == ExperimentStatus.FAILURE
    assert "No checkpoint in" in caplog.text
    assert not (tmp_path / "m.onnx").exists()


def test_missing_exporter_package_names_what_to_install(tmp_path, monkeypatch):
    real_find_spec = export_module.importlib.util.find_spec
    monkeypatch.setattr(
        export_module.importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real_find_spec(name, *a)
    )
    with pytest.raises(ImportError, match=r"pip install onnxscript"):
        export_onnx(parse_args(["--env", "CartPole-v1", "--train_dir", str(tmp_path)], evaluation=True), "m.onnx")


def test_generate_args_shapes_and_dtypes():
    args = generate_args(gym.spaces.Box(-1, 1, (4,), np.float32), batch_size=3)
    assert list(args) == ["obs"] and args["obs"].shape == (3, 4) and args["obs"].dtype == torch.float32
    space = gym.spaces.Dict(image=gym.spaces.Box(0, 255, (3, 8, 8), np.uint8), index=gym.spaces.Discrete(4))
    args = generate_args(space, batch_size=2)
    assert list(args) == ["image", "index"]
    assert args["image"].shape == (2, 3, 8, 8) and args["image"].dtype == torch.uint8
    assert args["index"].shape == (2,) and args["index"].dtype == torch.int64
    with pytest.raises(ValueError, match="batch_size"):
        generate_args(space, batch_size=0)
    with pytest.raises(NotImplementedError, match="nested"):
        generate_args(gym.spaces.Dict(inner=gym.spaces.Dict(a=gym.spaces.Discrete(2))))


def test_exporter_rejects_wrong_inputs(tmp_path):
    argv = make_experiment(tmp_path, "CartPole-v1", "--use_rnn", "True", "--rnn_size", "8", "--encoder_mlp_layers", "8")
    cfg = load_from_checkpoint(parse_args(argv, evaluation=True))
    exporter = create_onnx_exporter(cfg, make_env(cfg))
    assert isinstance(exporter, OnnxExporter) and not exporter.training
    assert exporter.input_names == ["obs", "rnn_states"]
    with pytest.raises(TypeError, match=r"missing \['rnn_states'\]"):
        exporter(obs=torch.zeros(1, 4))
    with pytest.raises(TypeError, match=r"unexpected \['extra'\]"):
        exporter(obs=torch.zeros(1, 4), rnn_states=torch.zeros(1, 8), extra=torch.zeros(1))
    actions, states = exporter(obs=torch.zeros(2, 4), rnn_states=generate_rnn_states(cfg, 2))
    assert actions.shape == (2,) and states.shape == (2, 8)


def test_patch_forward_names_the_inputs():
    class KeywordModule(torch.nn.Module):
        def forward(self, **inputs):
            return inputs["a"] - inputs["b"]

    module = KeywordModule()
    patch_forward(module, ["a", "b"])
    assert list(inspect.signature(module.forward).parameters) == ["a", "b"]
    result = module(torch.tensor([5.0]), torch.tensor([2.0]))
    assert float(result) == 3.0
    assert float(module(torch.tensor([5.0]), b=torch.tensor([1.0]))) == 4.0
    with pytest.raises(TypeError):
        module(torch.tensor([1.0]), torch.tensor([1.0]), torch.tensor([1.0]))
