"""Sample Factory's "Custom models" template, with its signatures exactly as the page writes them (no type
annotations), each part filled in with a body: it trains CartPole-v1 natively (compiled, not silently eager)
and enjoys it, through both routes of the page (components, and a whole actor-critic)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from pysf.algo.inference.compile import ModelCompileError
from pysf.algo.inference.policy_backends import NativePolicy, PythonPolicy
from pysf.algo.utils.context import global_model_factory
from pysf.algo.utils.misc import ExperimentStatus
from pysf.enjoy import enjoy
from pysf.model.actor_critic import ActorCritic
from pysf.model.core import ModelCore
from pysf.model.decoder import Decoder
from pysf.model.encoder import Encoder
from pysf.train import make_runner, parse_train_args, run_rl
from pysf.utils.typing import ActionSpace, Config, ObsSpace

# ---- the template's classes, filled in (signatures as on the page) ------------------------------------------


class CustomEncoder(Encoder):
    def __init__(self, cfg: Config, obs_space: ObsSpace):
        super().__init__(cfg)
        self.mlp = nn.Sequential(nn.Linear(obs_space["obs"].shape[0], 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh())

    def forward(self, obs_dict):
        return self.mlp(obs_dict["obs"])

    def get_out_size(self) -> int:
        return 64


class CustomCore(ModelCore):
    def __init__(self, cfg: Config, input_size: int):
        super().__init__(cfg)
        self.core_output_size = input_size

    def forward(self, head_output, rnn_states):
        return head_output, rnn_states


class CustomDecoder(Decoder):
    def __init__(self, cfg: Config, decoder_input_size: int):
        super().__init__(cfg)
        self.linear = nn.Linear(decoder_input_size, 64)

    def forward(self, core_output):
        return torch.tanh(self.linear(core_output))

    def get_out_size(self) -> int:
        return 64


class CustomActorCritic(ActorCritic):
    def __init__(
        self,
        model_factory,
        obs_space: ObsSpace,
        action_space: ActionSpace,
        cfg: Config,
    ):
        super().__init__(obs_space, action_space, cfg)

        self.encoder = CustomEncoder(cfg, obs_space)
        self.core = CustomCore(cfg, self.encoder.get_out_size())
        self.decoder = CustomDecoder(cfg, self.core.get_out_size())
        self.critic_linear = nn.Linear(self.decoder.get_out_size(), 1)
        self.action_parameterization = self.get_action_parameterization(self.decoder.get_out_size())

    def forward(self, normalized_obs_dict, rnn_states, values_only=False):
        x = self.forward_head(normalized_obs_dict)
        x, new_rnn_states = self.forward_core(x, rnn_states)
        result = self.forward_tail(x, values_only, sample_actions=True)
        result["new_rnn_states"] = new_rnn_states
        return result


class ComponentsOnlyActorCritic(CustomActorCritic):
    """The whole-model route without any forward: everything comes from the components it sets."""

    forward = ActorCritic.forward


class NumpyEncoder(CustomEncoder):
    """Calls numpy in forward: TorchScript cannot compile it."""

    def forward(self, obs_dict):
        scale = float(np.sqrt(4.0))
        return self.mlp(obs_dict["obs"] * scale)


# ---- helpers ------------------------------------------------------------------------------------------------

FAST_CARTPOLE = ["--env", "CartPole-v1", "--seed", "1", "--train_for_env_steps", "200000"]


pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


def train(tmp_path, *flags: str, experiment: str = "exp"):
    cfg = parse_train_args([*FAST_CARTPOLE, "--experiment", experiment, "--train_dir", str(tmp_path), *flags])
    cfg, runner = make_runner(cfg)
    assert runner.init() == ExperimentStatus.SUCCESS
    status = runner.run()
    assert status == ExperimentStatus.SUCCESS
    return runner


def enjoy_reward(tmp_path, experiment: str = "exp") -> float:
    cfg = parse_train_args(
        ["--env", "CartPole-v1", "--experiment", experiment, "--train_dir", str(tmp_path), "--no_render",
         "--max_num_episodes", "3", "--eval_deterministic", "True"],
        evaluation=True,
    )
    status, reward = enjoy(cfg)
    assert status == ExperimentStatus.SUCCESS
    return reward


def register_components() -> None:
    factory = global_model_factory()
    factory.register_encoder_factory(CustomEncoder)
    factory.register_core_factory(CustomCore)  # the name the page uses (SF's own is register_model_core_factory)
    factory.register_decoder_factory(CustomDecoder)


# ---- tests --------------------------------------------------------------------------------------------------


def test_template_components_train_natively_and_enjoy(tmp_path):
    register_components()
    runner = train(tmp_path)
    assert isinstance(runner.policy, NativePolicy), "the unannotated template must compile, not fall back to eager"
    assert runner.best_mean_reward > 100, f"did not learn: best 100-episode mean {runner.best_mean_reward:.1f}"
    assert enjoy_reward(tmp_path) > 100


@pytest.mark.parametrize("actor_critic_class", [CustomActorCritic, ComponentsOnlyActorCritic])
def test_template_whole_actor_critic_trains_natively(tmp_path, actor_critic_class):
    global_model_factory().register_actor_critic_factory(actor_critic_class)
    runner = train(tmp_path)
    assert type(runner.learner.actor_critic) is actor_critic_class
    assert isinstance(runner.policy, NativePolicy)
    assert runner.best_mean_reward > 100, f"did not learn: best 100-episode mean {runner.best_mean_reward:.1f}"
    assert enjoy_reward(tmp_path) > 100


def test_user_classes_are_not_modified_by_compilation(tmp_path):
    register_components()
    train(tmp_path, "--train_for_env_steps", "5000")
    import inspect

    for cls in (CustomEncoder, CustomCore, CustomDecoder):
        params = list(inspect.signature(cls.forward).parameters.values())[1:]
        assert all(p.annotation is inspect.Parameter.empty for p in params), cls


def test_uncompilable_model_falls_back_to_eager_with_one_line(tmp_path, caplog):
    global_model_factory().register_encoder_factory(NumpyEncoder)
    with caplog.at_level(logging.WARNING, logger="pysf"):
        runner = train(tmp_path, "--train_for_env_steps", "20000")
    assert isinstance(runner.policy, PythonPolicy)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Inference:")]
    assert len(lines) == 1 and "\n" not in lines[0]
    line = lines[0]
    assert "component 'encoder' (NumpyEncoder)" in line
    assert f"{__file__}:" in line  # the user's file and line, not the annotated copy's name
    assert "eager PyTorch inference" in line and "slower" in line


def test_strict_torchscript_backend_stops_with_the_full_error(tmp_path, caplog):
    global_model_factory().register_encoder_factory(NumpyEncoder)
    cfg = parse_train_args(
        [*FAST_CARTPOLE, "--experiment", "strict", "--train_dir", str(tmp_path), "--inference_backend", "torchscript"]
    )
    with caplog.at_level(logging.ERROR, logger="pysf"):
        assert run_rl(cfg) == ExperimentStatus.FAILURE
    message = "\n".join(r.getMessage() for r in caplog.records)
    assert "component 'encoder' (NumpyEncoder" in message and "TorchScript reports" in message
    assert "How to fix it" in message


def test_two_compiles_in_one_process(tmp_path):
    """A failed compile must not poison the next one ("Can't redefine method"), and a good model compiles twice."""
    from pysf.algo.inference.compile import compile_inference_module
    from pysf.algo.utils.env_info import obtain_env_info
    from pysf.model.actor_critic import create_actor_critic
    from pysf.model.model_utils import get_rnn_size

    cfg = parse_train_args([*FAST_CARTPOLE, "--experiment", "x", "--train_dir", str(tmp_path)])
    info = obtain_env_info(cfg)
    global_model_factory().register_encoder_factory(NumpyEncoder)
    messages = []
    for _ in range(2):
        model = create_actor_critic(cfg, info.obs_space, info.action_space)
        with pytest.raises(ModelCompileError) as error:
            compile_inference_module(model, info.obs_space, get_rnn_size(cfg))
        messages.append(error.value.torchscript_message)
    assert "redefine" not in messages[1] and messages[0] == messages[1]

    register_components()
    for _ in range(2):
        model = create_actor_critic(cfg, info.obs_space, info.action_space)
        compiled, _eager = compile_inference_module(model, info.obs_space, get_rnn_size(cfg))
        obs = {"obs": torch.zeros(3, 4)}
        assert compiled(obs, torch.zeros(3, get_rnn_size(cfg)), True)["actions"].shape == (3,)
