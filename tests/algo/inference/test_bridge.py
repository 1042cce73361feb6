"""The TorchScript bridge: custom models, factory registration, compile errors, back-end parity."""

from __future__ import annotations

import importlib.util
import sys
from typing import Dict, Tuple

import pytest
import torch
from gymnasium import spaces
from torch import Tensor, nn

from pysf.algo.inference.compile import ModelCompileError, ModelVerificationError, compile_inference_module
from pysf.algo.inference.policy_backends import NativePolicy, PythonPolicy, make_inference_policy
from pysf.algo.utils.context import global_model_factory
from pysf.cfg.arguments import default_cfg
from pysf.model.actor_critic import ActorCritic, ActorCriticSharedWeights, create_actor_critic
from pysf.model.core import ModelCore
from pysf.model.encoder import Encoder
from pysf.model.model_utils import get_rnn_size

from helpers import REPO_ROOT

OBS_SPACE = spaces.Dict(obs=spaces.Box(-1.0, 1.0, (4,), dtype="float32"))


pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


@pytest.fixture
def cfg():
    c = default_cfg(env="CartPole-v1")
    c.rnn_size = 32
    c.encoder_mlp_layers = [32, 32]
    return c


def load_example(name: str):
    path = REPO_ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_both_backends(actor_critic, obs_space, cfg, obs) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    rnn = torch.zeros(obs[next(iter(obs))].shape[0], get_rnn_size(cfg))
    native = make_inference_policy(actor_critic, obs_space, get_rnn_size(cfg), backend="torchscript")
    python = make_inference_policy(actor_critic, obs_space, get_rnn_size(cfg), backend="python")
    assert isinstance(native, NativePolicy) and isinstance(python, PythonPolicy)
    torch.manual_seed(3)
    native_out, _ = native.forward(obs, rnn)
    torch.manual_seed(3)
    python_out, _ = python.forward(obs, rnn)
    return native_out, python_out


def assert_same_outputs(a: Dict[str, Tensor], b: Dict[str, Tensor]) -> None:
    assert set(a) == set(b) == {"values", "action_logits", "actions", "log_prob_actions", "new_rnn_states"}
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key


# ---- the custom-models template ---------------------------------------------------------------------


def test_custom_models_template_registers_actor_critic_class(cfg):
    example = load_example("custom_models_template")
    example.register_model_components()
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2))
    assert type(actor_critic).__name__ == "CustomActorCritic"
    obs = {"obs": torch.rand(5, 4)}
    native_out, python_out = run_both_backends(actor_critic, OBS_SPACE, cfg, obs)
    assert_same_outputs(native_out, python_out)
    assert native_out["new_rnn_states"].shape == (5, cfg.rnn_size)
    assert native_out["actions"].dtype == torch.int64


def test_custom_models_template_components_in_default_actor_critic(cfg):
    example = load_example("custom_models_template")
    factory = global_model_factory()
    factory.register_encoder_factory(example.CustomEncoder)
    factory.register_core_factory(example.CustomCore)
    factory.register_decoder_factory(example.CustomDecoder)
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(3))
    assert isinstance(actor_critic, ActorCriticSharedWeights)
    assert isinstance(actor_critic.encoder, example.CustomEncoder)
    assert isinstance(actor_critic.core, example.CustomCore)
    assert isinstance(actor_critic.decoder, example.CustomDecoder)
    native_out, python_out = run_both_backends(actor_critic, OBS_SPACE, cfg, {"obs": torch.rand(3, 4)})
    assert_same_outputs(native_out, python_out)


def test_custom_models_template_script_trains(tmp_path):
    import subprocess

    argv = ["--env", "CartPole-v1", "--experiment", "template", "--train_dir", str(tmp_path), "--rnn_size", "32",
            "--train_for_env_steps", "20000", "--seed", "0"]
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "custom_models_template.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Result:" in result.stdout
    assert "Falling back to eager" not in result.stdout  # unannotated as on Sample Factory's page, still compiled
    assert list((tmp_path / "template" / "checkpoint_p0").glob("checkpoint_*.pth"))


# ---- registration -----------------------------------------------------------------------------------


class SmallEncoder(Encoder):
    def __init__(self, cfg, obs_space):
        super().__init__(cfg)
        self.linear = nn.Linear(obs_space["obs"].shape[0], 16)

    def forward(self, obs_dict: Dict[str, Tensor]) -> Tensor:
        return torch.relu(self.linear(obs_dict["obs"]))

    def get_out_size(self) -> int:
        return 16


def test_register_encoder_by_function(cfg):
    calls = []

    def make_encoder(cfg_, obs_space):
        calls.append(obs_space)
        return SmallEncoder(cfg_, obs_space)

    global_model_factory().register_encoder_factory(make_encoder)
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2))
    assert isinstance(actor_critic.encoder, SmallEncoder) and len(calls) == 1
    native_out, python_out = run_both_backends(actor_critic, OBS_SPACE, cfg, {"obs": torch.rand(2, 4)})
    assert_same_outputs(native_out, python_out)


def test_register_actor_critic_by_function_and_separate_weights(cfg):
    made = []

    def make_actor_critic(cfg_, obs_space, action_space):
        made.append(True)
        return ActorCriticSharedWeights(global_model_factory(), obs_space, action_space, cfg_)

    global_model_factory().register_actor_critic_factory(make_actor_critic)
    assert isinstance(create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2)), ActorCriticSharedWeights)
    assert made


def test_register_actor_critic_class_with_base_constructor_order(cfg):
    class BaseOrderActorCritic(ActorCriticSharedWeights):
        def __init__(self, obs_space, action_space, cfg):
            super().__init__(global_model_factory(), obs_space, action_space, cfg)

    global_model_factory().register_actor_critic_factory(BaseOrderActorCritic)
    assert isinstance(create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2)), BaseOrderActorCritic)


def test_register_actor_critic_class_with_unusable_constructor():
    class Odd(ActorCritic):
        def __init__(self, a, b):
            pass

    with pytest.raises(TypeError, match=r"\(model_factory, obs_space, action_space, cfg\)"):
        global_model_factory().register_actor_critic_factory(Odd)


def test_register_rejects_non_callable():
    with pytest.raises(TypeError, match="register_encoder_factory expects a function or a class"):
        global_model_factory().register_encoder_factory(42)


def test_action_mask_reaches_the_model(cfg):
    cfg.use_rnn = False
    obs_space = spaces.Dict(obs=OBS_SPACE["obs"], action_mask=spaces.Box(0, 1, (4,), dtype="float32"))
    actor_critic = create_actor_critic(cfg, obs_space, spaces.Discrete(4))
    assert "action_mask" not in [n for n, _ in actor_critic.named_parameters()]
    mask = torch.tensor([[0, 0, 1, 0]] * 200 + [[1, 0, 0, 1]] * 200, dtype=torch.float32)
    obs = {"obs": torch.rand(400, 4), "action_mask": mask}
    for backend in ("torchscript", "python"):
        policy = make_inference_policy(actor_critic, obs_space, get_rnn_size(cfg), backend=backend)
        out, _ = policy.forward(obs, torch.zeros(400, get_rnn_size(cfg)))
        assert bool((out["actions"][:200] == 2).all())
        assert set(out["actions"][200:].tolist()) <= {0, 3}
        det, _ = policy.forward(obs, torch.zeros(400, get_rnn_size(cfg)), deterministic=True)
        assert bool((det["actions"][:200] == 2).all())


# ---- compile errors ---------------------------------------------------------------------------------


class UnannotatedEncoder(Encoder):
    def __init__(self, cfg, obs_space):
        super().__init__(cfg)
        self.linear = nn.Linear(4, 8)

    def forward(self, obs_dict):
        return self.linear(obs_dict["obs"])

    def get_out_size(self) -> int:
        return 8


class DistributionsEncoder(SmallEncoder):
    def forward(self, obs_dict: Dict[str, Tensor]) -> Tensor:
        x = self.linear(obs_dict["obs"])
        return torch.distributions.Categorical(logits=x).probs


class KwargsCore(ModelCore):
    def __init__(self, cfg, input_size):
        super().__init__(cfg)
        self.core_output_size = input_size

    def forward(self, head_output, rnn_states, **kwargs):
        return head_output, rnn_states


class CfgInForwardEncoder(SmallEncoder):
    def forward(self, obs_dict: Dict[str, Tensor]) -> Tensor:
        return self.linear(obs_dict["obs"]) * self.cfg.policy_init_gain


def compile_error_for(cfg, register) -> ModelCompileError:
    register(global_model_factory())
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2))
    with pytest.raises(ModelCompileError) as info:
        compile_inference_module(actor_critic, OBS_SPACE, get_rnn_size(cfg))
    return info.value


def test_unannotated_encoder_compiles_with_the_contract_types(cfg):
    """Written like Sample Factory's docs (no annotations): pysf supplies the types, the copy compiles."""
    global_model_factory().register_encoder_factory(UnannotatedEncoder)
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2))
    compiled, eager = compile_inference_module(actor_critic, OBS_SPACE, get_rnn_size(cfg))
    assert "Dict(str, Tensor)" in str(compiled.actor_critic.encoder.forward.schema)
    assert type(actor_critic.encoder) is UnannotatedEncoder  # the learner's model is untouched


def test_torch_distributions_error_is_actionable(cfg):
    error = compile_error_for(cfg, lambda f: f.register_encoder_factory(DistributionsEncoder))
    assert error.component_class == "DistributionsEncoder"
    assert "torch.distributions does not compile" in str(error)
    assert "--inference_backend=python" in str(error)


def test_kwargs_core_error_is_actionable(cfg):
    error = compile_error_for(cfg, lambda f: f.register_core_factory(KwargsCore))
    assert error.component_class == "KwargsCore" and error.component_name == "core"
    assert "no *args / **kwargs" in str(error)


def test_cfg_in_forward_error_is_actionable(cfg):
    error = compile_error_for(cfg, lambda f: f.register_encoder_factory(CfgInForwardEncoder))
    assert error.component_class == "CfgInForwardEncoder"
    assert "instead of using self.cfg in forward()" in str(error)


def test_unscriptable_model_still_runs_with_python_backend(cfg):
    global_model_factory().register_encoder_factory(UnannotatedEncoder)
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2))
    policy = make_inference_policy(actor_critic, OBS_SPACE, get_rnn_size(cfg), backend="python")
    out, version = policy.forward({"obs": torch.rand(3, 4)}, torch.zeros(3, get_rnn_size(cfg)))
    assert out["actions"].shape == (3,) and version == 0


class PythonFlagEncoder(SmallEncoder):
    """Diverges between eager and compiled: TorchScript freezes the Python branch at compile time."""

    def forward(self, obs_dict: Dict[str, Tensor]) -> Tensor:
        x = self.linear(obs_dict["obs"])
        if not torch.jit.is_scripting():
            x = x + 1.0
        return x


def test_verification_catches_divergence(cfg):
    global_model_factory().register_encoder_factory(PythonFlagEncoder)
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2))
    with pytest.raises(ModelVerificationError, match="does not reproduce the eager model"):
        compile_inference_module(actor_critic, OBS_SPACE, get_rnn_size(cfg))


def test_unknown_backend(cfg):
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2))
    with pytest.raises(ValueError, match="Unknown --inference_backend"):
        make_inference_policy(actor_critic, OBS_SPACE, get_rnn_size(cfg), backend="tensorrt")


# ---- weights -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torchscript", "python"])
def test_update_weights_follows_the_learner(cfg, backend):
    cfg.normalize_input = True
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Box(-1, 1, (2,)))
    policy = make_inference_policy(actor_critic, OBS_SPACE, get_rnn_size(cfg), backend=backend)
    obs = {"obs": torch.rand(6, 4)}
    rnn = torch.zeros(6, get_rnn_size(cfg))
    with torch.no_grad():
        for p in actor_critic.parameters():
            p.add_(0.05 * torch.randn_like(p))
    actor_critic.train()
    actor_critic.normalize_obs({"obs": torch.rand(100, 4) * 3})  # updates the running statistics
    policy.update_weights(actor_critic, 5)
    out, version = policy.forward(obs, rnn, deterministic=True)
    assert version == 5 and policy.version == 5
    actor_critic.eval()
    with torch.no_grad():
        expected = actor_critic(actor_critic.normalize_obs(dict(obs)), rnn)
    assert torch.allclose(out["values"], expected["values"], atol=1e-5)
    assert torch.allclose(out["action_logits"], expected["action_logits"], atol=1e-5)


def test_update_weights_rejects_incomplete_state(cfg):
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2))
    policy = make_inference_policy(actor_critic, OBS_SPACE, get_rnn_size(cfg))
    state = dict(actor_critic.state_dict())
    state.pop("critic_linear.weight")
    with pytest.raises(ValueError, match="critic_linear.weight"):
        policy.update_weights(state, 1)
    assert policy.version == 0


def test_outputs_are_usable_by_autograd(cfg):
    actor_critic = create_actor_critic(cfg, OBS_SPACE, spaces.Discrete(2))
    policy = make_inference_policy(actor_critic, OBS_SPACE, get_rnn_size(cfg))
    out, _ = policy.forward({"obs": torch.rand(4, 4)}, torch.zeros(4, get_rnn_size(cfg)))
    weight = torch.ones(4, requires_grad=True)
    (out["values"] * weight).sum().backward()
    assert torch.equal(weight.grad, out["values"])
    out["values"].add_(1.0)  # not an inference tensor: in-place ops work
