"""Default model components (encoders x cores x shared/separate weights x action spaces).

Builds actor-critics with ``pysf.model.actor_critic.create_actor_critic`` and checks, for batch sizes 1 and
64: output keys/shapes/dtypes, ``values_only``, that ``forward_head/core/tail`` chain to ``forward``, that
``action_distribution()`` is consistent with the sampled actions, and that ``torch.jit.script`` of the
model gives identical outputs to eager under the same seed. Plus Sample Factory parameter names, weight
initialization and the PackedSequence (training) path of the RNN cores.
"""

from __future__ import annotations

import argparse
import math
from typing import Dict, List, Tuple

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

from pysf.algo.utils.action_distributions import calc_action_mask_width, calc_num_action_parameters
from pysf.algo.utils.context import SampleFactoryContext, set_global_context, sf_global_context
from pysf.cfg.arguments import default_cfg
from pysf.model.actor_critic import (
    ActorCriticSeparateWeights,
    ActorCriticSharedWeights,
    create_actor_critic,
    obs_space_without_action_mask,
)
from pysf.model.core import ModelCoreIdentity, ModelCoreRNN, default_make_core_func
from pysf.model.decoder import MlpDecoder
from pysf.model.encoder import ConvEncoder, MlpEncoder, MultiInputEncoder, ResnetEncoder, has_conv_encoder
from pysf.model.model_utils import get_rnn_size

OUTPUT_KEYS = {"values", "action_logits", "actions", "log_prob_actions", "new_rnn_states"}
BATCH_SIZES = (1, 64)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Small models run much faster single-threaded (OpenMP spin-waits dominate on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _default_model_factory():
    """Each test builds models with the default factory functions (other tests may register custom ones)."""
    saved = sf_global_context()
    set_global_context(SampleFactoryContext())
    yield
    set_global_context(saved)


# ------------------------------------------------------------------------------------------------
# Configurations
# ------------------------------------------------------------------------------------------------

SMALL = dict(rnn_size=16, encoder_mlp_layers=[24, 24], encoder_conv_mlp_layers=[24], decoder_mlp_layers=[])

CORES = {
    "gru": dict(use_rnn=True, rnn_type="gru", rnn_num_layers=1),
    "lstm": dict(use_rnn=True, rnn_type="lstm", rnn_num_layers=1),
    "identity": dict(use_rnn=False, rnn_type="gru"),
    "gru2": dict(use_rnn=True, rnn_type="gru", rnn_num_layers=2),
    "lstm2": dict(use_rnn=True, rnn_type="lstm", rnn_num_layers=2),
}

ACTIONS = {
    "discrete": (spaces.Discrete(5), {}),
    "box3_adaptive": (spaces.Box(-1.0, 1.0, (3,)), dict(adaptive_stddev=True)),
    "box1_adaptive_tanh": (spaces.Box(-1.0, 1.0, (1,)), dict(adaptive_stddev=True, continuous_tanh_scale=0.5)),
    "box3_nonadaptive": (spaces.Box(-1.0, 1.0, (3,)), dict(adaptive_stddev=False, initial_stddev=0.5)),
    "box2_nonadaptive_tanh": (
        spaces.Box(-1.0, 1.0, (2,)),
        dict(adaptive_stddev=False, continuous_tanh_scale=0.3, initial_stddev=2.0),
    ),
    "tuple": (spaces.Tuple((spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,)), spaces.Discrete(4))), {}),
    "multidiscrete": (spaces.MultiDiscrete([3, 4]), {}),
}

MASKABLE = {"discrete", "tuple", "multidiscrete"}


def make_cfg(small: bool = False, **overrides) -> argparse.Namespace:
    """Default config with ``overrides`` (applied over the SMALL sizes when ``small``)."""
    cfg = default_cfg(env="test_env")
    if small:
        overrides = {**SMALL, **overrides}
    for k, v in overrides.items():
        assert hasattr(cfg, k), f"unknown flag {k}"
        setattr(cfg, k, v)
    return cfg


def vec_space(n: int = 10) -> spaces.Dict:
    return spaces.Dict({"obs": spaces.Box(-3.0, 3.0, (n,))})


def img_space(shape=(3, 64, 64), dtype=np.float32) -> spaces.Dict:
    high = 255 if dtype == np.uint8 else 1.0
    return spaces.Dict({"obs": spaces.Box(0, high, shape, dtype=dtype)})


def dict_space() -> spaces.Dict:
    return spaces.Dict(
        {
            "obs": spaces.Box(0, 255, (3, 40, 40), dtype=np.uint8),
            "measurements": spaces.Box(-5.0, 5.0, (7,)),
        }
    )


def random_obs(obs_space: spaces.Dict, batch: int, seed: int = 0) -> Dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = {}
    for k, s in obs_space.spaces.items():
        if s.dtype == np.uint8:
            obs[k] = torch.randint(0, 256, (batch,) + s.shape, generator=g, dtype=torch.uint8)
        else:
            obs[k] = torch.randn((batch,) + s.shape, generator=g)
    return obs


def random_mask(action_space, batch: int, seed: int = 0) -> Tensor:
    """0/1 mask over discrete categories with at least one allowed entry per component."""
    g = torch.Generator().manual_seed(seed)
    width = calc_action_mask_width(action_space)
    mask = (torch.rand(batch, width, generator=g) < 0.5).to(torch.int64)
    sizes = []
    subs = action_space.spaces if isinstance(action_space, spaces.Tuple) else [action_space]
    for s in subs:
        if isinstance(s, spaces.Discrete):
            sizes.append(int(s.n))
        elif isinstance(s, spaces.MultiDiscrete):
            sizes.extend(int(n) for n in s.nvec)
    off = 0
    for n in sizes:
        mask[torch.arange(batch), off + torch.randint(0, n, (batch,), generator=g)] = 1
        off += n
    return mask


def expected_actions(action_space, batch: int) -> Tuple[tuple, torch.dtype]:
    if isinstance(action_space, spaces.Discrete):
        return (batch,), torch.int64
    if isinstance(action_space, spaces.Box):
        k = action_space.shape[0]
        return ((batch,) if k == 1 else (batch, k)), torch.float32
    if isinstance(action_space, spaces.MultiDiscrete):
        return (batch, len(action_space.nvec)), torch.int64
    n = sum(1 if isinstance(s, spaces.Discrete) else s.shape[0] for s in action_space.spaces)
    return (batch, n), torch.float32


# ------------------------------------------------------------------------------------------------
# The shared check
# ------------------------------------------------------------------------------------------------


def _assert_same(a: Tensor, b: Tensor, what: str) -> None:
    assert a.dtype == b.dtype, what
    assert a.shape == b.shape, what
    assert torch.equal(a, b), f"{what}: max diff {(a.double() - b.double()).abs().max().item()}"


def check_actor_critic(
    cfg: argparse.Namespace,
    obs_space: spaces.Dict,
    action_space,
    script: bool = True,
    batch_sizes=BATCH_SIZES,
    with_mask: bool = False,
) -> nn.Module:
    model = create_actor_critic(cfg, obs_space, action_space)
    assert isinstance(model, ActorCriticSharedWeights if cfg.actor_critic_share_weights else ActorCriticSeparateWeights)
    model.eval()  # no normalizer updates while comparing eager and compiled outputs
    scripted = torch.jit.script(model) if script else None
    rnn_size = get_rnn_size(cfg)
    num_params = calc_num_action_parameters(action_space)

    for batch in batch_sizes:
        obs = random_obs(obs_space, batch, seed=batch)
        obs_before = {k: v.clone() for k, v in obs.items()}
        rnn_states = torch.randn(batch, rnn_size, generator=torch.Generator().manual_seed(batch + 1)) * 0.5
        mask = random_mask(action_space, batch) if with_mask else None

        with torch.no_grad():
            normalized = model.normalize_obs(obs)
            for k in obs:
                assert torch.equal(obs[k], obs_before[k]), "normalize_obs leaves its input alone"
                assert normalized[k].dtype == torch.float32

            torch.manual_seed(42)
            out = model(normalized, rnn_states, action_mask=mask)
            dist = model.action_distribution()

            # keys, shapes, dtypes
            assert set(out.keys()) == OUTPUT_KEYS
            assert out["values"].shape == (batch,) and out["values"].dtype == torch.float32
            assert out["action_logits"].shape == (batch, num_params)
            assert out["action_logits"].dtype == torch.float32
            shape, dtype = expected_actions(action_space, batch)
            assert tuple(out["actions"].shape) == shape and out["actions"].dtype == dtype
            assert out["log_prob_actions"].shape == (batch,)
            assert out["new_rnn_states"].shape == (batch, rnn_size)
            assert out["new_rnn_states"].dtype == torch.float32
            for k in OUTPUT_KEYS:
                assert torch.isfinite(out[k].float()).all(), k
            if not cfg.use_rnn:
                assert torch.equal(out["new_rnn_states"], rnn_states), "identity core passes states through"
            else:
                assert not torch.equal(out["new_rnn_states"], rnn_states)

            # the distribution of the last forward explains the sampled actions
            assert dist is not None
            torch.testing.assert_close(dist.log_prob(out["actions"]), out["log_prob_actions"], rtol=1e-5, atol=1e-5)
            assert torch.equal(dist.raw_logits, out["action_logits"])
            # ... also with actions stored as float (rollout buffers)
            torch.testing.assert_close(
                dist.log_prob(out["actions"].float()), out["log_prob_actions"], rtol=1e-5, atol=1e-5
            )
            if mask is not None:
                assert (out["log_prob_actions"] > -1e3).all(), "only allowed actions are sampled"

            # values_only
            torch.manual_seed(42)
            vo = model(normalized, rnn_states, values_only=True)
            assert set(vo.keys()) == {"values", "new_rnn_states"}
            _assert_same(vo["values"], out["values"], "values_only values")
            _assert_same(vo["new_rnn_states"], out["new_rnn_states"], "values_only states")

            # head -> core -> tail chain equals forward
            torch.manual_seed(42)
            head = model.forward_head(normalized)
            assert head.shape[0] == batch and head.dim() == 2
            core_out, new_states = model.forward_core(head, rnn_states)
            tail = model.forward_tail(core_out, values_only=False, sample_actions=True, action_mask=mask)
            for k in ("values", "action_logits", "actions", "log_prob_actions"):
                _assert_same(tail[k], out[k], f"chain {k}")
            _assert_same(new_states, out["new_rnn_states"], "chain new_rnn_states")
            # learner-style call: no sampling, then log_prob of given actions
            tail_ns = model.forward_tail(core_out, values_only=False, sample_actions=False, action_mask=mask)
            assert set(tail_ns.keys()) == {"values", "action_logits"}
            _assert_same(tail_ns["action_logits"], out["action_logits"], "no-sample logits")
            torch.testing.assert_close(
                model.action_distribution().log_prob(out["actions"]), out["log_prob_actions"], rtol=1e-5, atol=1e-5
            )
            tail_vo = model.forward_tail(core_out, values_only=True, sample_actions=True)
            assert set(tail_vo.keys()) == {"values"}

            if scripted is None:
                continue
            # compiled == eager under the same seed
            torch.manual_seed(42)
            sout = scripted(normalized, rnn_states, False, mask)
            assert set(sout.keys()) == OUTPUT_KEYS
            for k in OUTPUT_KEYS:
                _assert_same(sout[k], out[k], f"scripted {k}")
            svo = scripted(normalized, rnn_states, True, None)
            assert set(svo.keys()) == {"values", "new_rnn_states"}
            _assert_same(svo["values"], out["values"], "scripted values_only")
            snorm = scripted.obs_normalizer(obs)
            for k in normalized:
                _assert_same(snorm[k], normalized[k], f"scripted normalized {k}")
    return model


# ------------------------------------------------------------------------------------------------
# MLP encoder: full product
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "separate"])
@pytest.mark.parametrize("core", list(CORES))
def test_mlp_encoder_models(core, shared, action):
    action_space, action_overrides = ACTIONS[action]
    cfg = make_cfg(True, **CORES[core], **action_overrides, actor_critic_share_weights=shared)
    model = check_actor_critic(cfg, vec_space(), action_space, with_mask=action in MASKABLE and core == "gru")

    # action parameterization specifics
    ap = model.action_parameterization
    if action.startswith("box") and "nonadaptive" in action:
        assert ap.learned_stddev.shape == (action_space.shape[0],)
        torch.testing.assert_close(ap.learned_stddev.data, torch.full((action_space.shape[0],), math.log(cfg.initial_stddev)))
    else:
        assert not hasattr(ap, "learned_stddev")
    if "tanh" in action:
        with torch.no_grad():
            params = ap.distribution_params(torch.randn(32, ap.distribution_linear.in_features) * 100)
        means, log_std = params.chunk(2, dim=1)
        assert (means.abs() <= cfg.continuous_tanh_scale + 1e-6).all()
        assert (means.abs() > 0.9 * cfg.continuous_tanh_scale).any(), "squashing saturates for large inputs"


# ------------------------------------------------------------------------------------------------
# Conv / ResNet encoders and Dict observations: reduced set
# ------------------------------------------------------------------------------------------------

CONV_CASES = [
    # (architecture, obs shape, core, shared, action)
    ("convnet_simple", (3, 64, 64), "gru", True, "discrete"),
    ("convnet_simple", (3, 64, 64), "lstm2", False, "box3_nonadaptive"),
    ("convnet_impala", (3, 64, 64), "lstm", True, "tuple"),
    ("convnet_impala", (3, 64, 64), "identity", False, "discrete"),
    ("convnet_atari", (3, 64, 64), "gru2", False, "multidiscrete"),
    ("convnet_atari", (4, 84, 84), "identity", True, "box1_adaptive_tanh"),
    ("resnet_impala", (3, 32, 32), "gru", True, "box3_adaptive"),
    ("resnet_impala", (3, 24, 40), "lstm", False, "discrete"),
]


@pytest.mark.parametrize(
    "arch,shape,core,shared,action", CONV_CASES, ids=[f"{a}-{'x'.join(map(str, s))}-{c}-{sh}-{ac}" for a, s, c, sh, ac in CONV_CASES]
)
def test_conv_encoder_models(arch, shape, core, shared, action):
    action_space, action_overrides = ACTIONS[action]
    cfg = make_cfg(
        True, **CORES[core], **action_overrides, actor_critic_share_weights=shared, encoder_conv_architecture=arch
    )
    dtype = np.uint8 if core == "identity" else np.float32
    model = check_actor_critic(cfg, img_space(shape, dtype), action_space, batch_sizes=(1, 16), with_mask=action == "discrete")
    encoder = model.encoder if shared else model.actor_encoder
    sub = encoder.encoders["obs"]
    assert isinstance(sub, ResnetEncoder if arch.startswith("resnet") else ConvEncoder)
    assert sub.get_out_size() == 24


def test_conv_architectures_layers():
    """Filter specs of the default conv nets (Sample Factory's convnet_simple/impala/atari)."""
    expected = {
        "convnet_simple": [(3, 32, 8, 4), (32, 64, 4, 2), (64, 128, 3, 2)],
        "convnet_impala": [(3, 16, 8, 4), (16, 32, 4, 2)],
        "convnet_atari": [(3, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)],
    }
    for arch, filters in expected.items():
        enc = ConvEncoder(make_cfg(True, encoder_conv_architecture=arch), img_space((3, 84, 84))["obs"])
        convs = [m for m in enc.enc.conv_head if isinstance(m, nn.Conv2d)]
        assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == filters
        assert all(c.padding == (0, 0) for c in convs)
        assert isinstance(enc.enc.conv_head[1], nn.ELU)
    res = ResnetEncoder(make_cfg(True, encoder_conv_architecture="resnet_impala"), img_space((3, 64, 64))["obs"])
    # per stage: conv3x3 (pad 1) -> maxpool(3, 2, pad 1) -> 2 residual blocks of two conv3x3
    stage_convs = [m for m in res.conv_head if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in stage_convs] == [(16, (3, 3), (1, 1)), (32, (3, 3), (1, 1)), (32, (3, 3), (1, 1))]
    pools = [m for m in res.conv_head if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride, p.padding) for p in pools] == [(3, 2, 1)] * 3
    assert len([m for m in res.conv_head.modules() if isinstance(m, nn.Conv2d)]) == 3 * (1 + 2 * 2)
    assert isinstance(res.conv_head[-1], nn.ELU), "final activation"
    assert res.conv_head_out_size == 32 * 8 * 8
    with pytest.raises(NotImplementedError):
        ConvEncoder(make_cfg(encoder_conv_architecture="convnet_nope"), img_space()["obs"])


@pytest.mark.parametrize("arch", ["convnet_simple", "resnet_impala"])
def test_conv_encoders_compute_what_their_layers_compute_in_nchw(arch):
    """The channels-last input layout is a speed matter only: the same features as the plain NCHW layers
    flattened in C, H, W order (what the MLP after them, and every checkpoint, was trained on)."""
    cls = ResnetEncoder if arch.startswith("resnet") else ConvEncoder
    enc = cls(make_cfg(True, encoder_conv_architecture=arch), img_space((3, 64, 64))["obs"]).eval()
    impl = enc.enc if cls is ConvEncoder else enc
    obs = torch.rand(5, 3, 64, 64)
    with torch.no_grad():
        reference = impl.mlp_layers(impl.conv_head(obs).reshape(5, -1))
        torch.testing.assert_close(enc(obs), reference, rtol=1e-5, atol=1e-5)
        assert impl.conv_head[0].weight.is_contiguous(), "the weights keep their layout"


DICT_CASES = [
    ("gru", True, "discrete", "convnet_simple"),
    ("lstm2", False, "tuple", "convnet_simple"),
    ("identity", False, "multidiscrete", "convnet_impala"),
    ("gru", False, "box3_nonadaptive", "resnet_impala"),
]


@pytest.mark.parametrize("core,shared,action,arch", DICT_CASES, ids=["-".join(map(str, c)) for c in DICT_CASES])
def test_dict_obs_models(core, shared, action, arch):
    action_space, action_overrides = ACTIONS[action]
    cfg = make_cfg(
        True, **CORES[core], **action_overrides, actor_critic_share_weights=shared, encoder_conv_architecture=arch
    )
    model = check_actor_critic(cfg, dict_space(), action_space, batch_sizes=(1, 16), with_mask=action in MASKABLE)
    encoder = model.encoder if shared else model.actor_encoder
    assert isinstance(encoder, MultiInputEncoder)
    assert encoder.obs_keys == ["measurements", "obs"], "sorted keys"
    assert list(encoder.encoders.keys()) == ["measurements", "obs"]
    assert isinstance(encoder.encoders["measurements"], MlpEncoder)
    assert encoder.get_out_size() == 24 + 24
    # outputs are concatenated in sorted key order
    obs = random_obs(dict_space(), 3)
    norm = model.normalize_obs(obs)
    with torch.no_grad():
        expected = torch.cat((encoder.encoders["measurements"](norm["measurements"]), encoder.encoders["obs"](norm["obs"])), 1)
        torch.testing.assert_close(encoder(norm), expected)


def test_action_mask_key_is_stripped_from_obs_space():
    obs_space = spaces.Dict({"obs": spaces.Box(-1, 1, (6,)), "action_mask": spaces.Box(0, 1, (5,))})
    assert set(obs_space_without_action_mask(obs_space).spaces) == {"obs"}
    cfg = make_cfg(True)
    model = create_actor_critic(cfg, obs_space, spaces.Discrete(5))
    assert list(model.encoder.encoders.keys()) == ["obs"]
    assert set(model.obs_normalizer.running_mean_std.running_mean_std.keys()) == {"obs"}


def test_full_default_config():
    """One model with every default (GRU 512, MLP [512, 512], convnet_simple + [512]) on an image + vector Dict obs."""
    cfg = make_cfg()
    assert cfg.rnn_size == 512 and list(cfg.encoder_mlp_layers) == [512, 512] and cfg.use_rnn
    obs_space = spaces.Dict({"obs": spaces.Box(0, 255, (3, 72, 96), dtype=np.uint8), "vec": spaces.Box(-1, 1, (12,))})
    model = check_actor_critic(cfg, obs_space, spaces.Discrete(6), batch_sizes=(1, 8), with_mask=True)
    assert get_rnn_size(cfg) == 512
    assert model.core.core.hidden_size == 512
    assert model.encoder.get_out_size() == 512 + 512
    assert isinstance(model.decoder.mlp, nn.Identity)
    assert model.returns_normalizer is not None


# ------------------------------------------------------------------------------------------------
# Sizes and misc behaviour
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (dict(use_rnn=True, rnn_type="gru", rnn_size=16, rnn_num_layers=1, actor_critic_share_weights=True), 16),
        (dict(use_rnn=True, rnn_type="lstm", rnn_size=16, rnn_num_layers=1, actor_critic_share_weights=True), 32),
        (dict(use_rnn=True, rnn_type="gru", rnn_size=16, rnn_num_layers=3, actor_critic_share_weights=True), 48),
        (dict(use_rnn=True, rnn_type="lstm", rnn_size=16, rnn_num_layers=2, actor_critic_share_weights=False), 128),
        (dict(use_rnn=False, rnn_type="gru", actor_critic_share_weights=True), 1),
        (dict(use_rnn=False, rnn_type="lstm", actor_critic_share_weights=True), 2),
        (dict(use_rnn=False, rnn_type="gru", actor_critic_share_weights=False), 2),
    ],
)
def test_get_rnn_size(overrides, expected):
    assert get_rnn_size(make_cfg(**overrides)) == expected


@pytest.mark.parametrize("shared", [True, False])
def test_identity_core_with_lstm_rnn_type(shared):
    """use_rnn=False with rnn_type=lstm: the placeholder state is 2 (x2 separate) wide and passes through."""
    cfg = make_cfg(True, use_rnn=False, rnn_type="lstm", actor_critic_share_weights=shared)
    check_actor_critic(cfg, vec_space(), spaces.Discrete(3), script=True, batch_sizes=(4,))


def test_decoder_mlp_layers():
    cfg = make_cfg(True, decoder_mlp_layers=[20, 12])
    model = check_actor_critic(cfg, vec_space(), spaces.Discrete(4), batch_sizes=(1, 5))
    assert isinstance(model.decoder, MlpDecoder)
    assert model.decoder.get_out_size() == 12
    assert model.critic_linear.in_features == 12
    assert model.action_parameterization.distribution_linear.in_features == 12
    names = {n for n, _ in model.named_parameters()}
    assert {"decoder.mlp.0.weight", "decoder.mlp.2.weight"} <= names


@pytest.mark.parametrize("nonlinearity,cls", [("elu", nn.ELU), ("relu", nn.ReLU), ("tanh", nn.Tanh)])
def test_nonlinearity(nonlinearity, cls):
    cfg = make_cfg(True, nonlinearity=nonlinearity)
    model = create_actor_critic(cfg, vec_space(), spaces.Discrete(3))
    assert isinstance(model.encoder.encoders["obs"].mlp_head[1], cls)
    assert isinstance(model.encoder.encoders["obs"].mlp_head[3], cls), "activation after the last layer too"


def test_normalizers_inside_model():
    cfg = make_cfg(True)
    model = create_actor_critic(cfg, vec_space(4), spaces.Discrete(3))
    assert model.returns_normalizer is not None
    assert model.returns_normalizer.running_mean.shape == (1,)
    model.train()
    obs = random_obs(vec_space(4), 32)
    model.normalize_obs(obs)
    rms = model.obs_normalizer.running_mean_std.running_mean_std["obs"]
    assert rms.count.item() == 33, "training mode updates the observation statistics"
    model.eval()
    model.normalize_obs(obs)
    assert rms.count.item() == 33
    s = model.summaries()
    assert any("running_mean" in k for k in s)
    no_norm = create_actor_critic(make_cfg(True, normalize_input=False, normalize_returns=False), vec_space(4), spaces.Discrete(3))
    assert no_norm.returns_normalizer is None
    assert no_norm.obs_normalizer.running_mean_std is None
    assert no_norm.normalize_obs(obs) is obs
    assert no_norm.summaries() == {}
    torch.jit.script(no_norm)


def test_device_and_type_queries():
    cfg = make_cfg(True, actor_critic_share_weights=False)
    model = create_actor_critic(cfg, vec_space(), spaces.Discrete(3))
    assert model.device_for_input_tensor("obs") == torch.device("cpu")
    assert model.type_for_input_tensor("obs") == torch.float32
    assert model.encoders == [model.actor_encoder, model.critic_encoder]
    model.model_to_device(torch.device("cpu"))


def test_script_after_eager_forward():
    """The eager-only attribute ``last_action_distribution`` does not break compilation."""
    cfg = make_cfg(True)
    model = create_actor_critic(cfg, vec_space(), spaces.Discrete(3))
    obs = model.normalize_obs(random_obs(vec_space(), 4))
    model(obs, torch.zeros(4, get_rnn_size(cfg)))
    assert model.action_distribution() is not None
    scripted = torch.jit.script(model)
    torch.manual_seed(0)
    a = scripted(obs, torch.zeros(4, get_rnn_size(cfg)), False, None)
    torch.manual_seed(0)
    b = model(obs, torch.zeros(4, get_rnn_size(cfg)))
    for k in OUTPUT_KEYS:
        assert torch.equal(a[k], b[k])


def test_separate_weights_are_independent():
    cfg = make_cfg(True, actor_critic_share_weights=False)
    model = create_actor_critic(cfg, vec_space(), spaces.Discrete(3))
    # critic output depends only on the critic half of the state; actions only on the actor half
    obs = model.normalize_obs(random_obs(vec_space(), 6))
    states = torch.randn(6, get_rnn_size(cfg))
    with torch.no_grad():
        base = model(obs, states)
        s2 = states.clone()
        s2[:, : cfg.rnn_size] += 1.0  # actor half
        out2 = model(obs, s2)
        assert torch.equal(out2["values"], base["values"])
        assert not torch.equal(out2["action_logits"], base["action_logits"])
        assert torch.equal(out2["new_rnn_states"][:, cfg.rnn_size :], base["new_rnn_states"][:, cfg.rnn_size :])
        s3 = states.clone()
        s3[:, cfg.rnn_size :] += 1.0  # critic half
        out3 = model(obs, s3)
        assert torch.equal(out3["action_logits"], base["action_logits"])
        assert not torch.equal(out3["values"], base["values"])


# ------------------------------------------------------------------------------------------------
# Parameter names (checkpoint compatibility with Sample Factory)
# ------------------------------------------------------------------------------------------------


def test_parameter_names_shared():
    cfg = make_cfg(True)
    model = create_actor_critic(cfg, vec_space(), spaces.Discrete(4))
    params = {n for n, _ in model.named_parameters()}
    buffers = {n for n, _ in model.named_buffers()}
    assert {
        "encoder.encoders.obs.mlp_head.0.weight",
        "encoder.encoders.obs.mlp_head.0.bias",
        "encoder.encoders.obs.mlp_head.2.weight",
        "encoder.encoders.obs.mlp_head.2.bias",
        "core.core.weight_ih_l0",
        "core.core.weight_hh_l0",
        "core.core.bias_ih_l0",
        "core.core.bias_hh_l0",
        "critic_linear.weight",
        "critic_linear.bias",
        "action_parameterization.distribution_linear.weight",
        "action_parameterization.distribution_linear.bias",
    } == params
    assert {
        "obs_normalizer.running_mean_std.running_mean_std.obs.running_mean",
        "obs_normalizer.running_mean_std.running_mean_std.obs.running_var",
        "obs_normalizer.running_mean_std.running_mean_std.obs.count",
        "returns_normalizer.running_mean",
        "returns_normalizer.running_var",
        "returns_normalizer.count",
    } == buffers
    # the compiled model keeps the same state-dict keys (checkpoints load into either)
    assert set(torch.jit.script(model).state_dict().keys()) == set(model.state_dict().keys())


def test_parameter_names_separate_conv_lstm2_nonadaptive():
    cfg = make_cfg(
        True, actor_critic_share_weights=False, rnn_type="lstm", rnn_num_layers=2, adaptive_stddev=False
    )
    model = create_actor_critic(cfg, img_space((3, 64, 64)), spaces.Box(-1, 1, (2,)))
    params = {n for n, _ in model.named_parameters()}
    for prefix in ("actor", "critic"):
        assert f"{prefix}_encoder.encoders.obs.enc.conv_head.0.weight" in params
        assert f"{prefix}_encoder.encoders.obs.enc.conv_head.4.weight" in params
        assert f"{prefix}_encoder.encoders.obs.enc.mlp_layers.0.weight" in params
        assert f"{prefix}_core.core.weight_ih_l0" in params
        assert f"{prefix}_core.core.weight_hh_l1" in params
    assert "critic_linear.weight" in params
    assert "action_parameterization.distribution_linear.weight" in params
    assert "action_parameterization.learned_stddev" in params
    assert not any(n.startswith("encoder.") or n.startswith("core.") for n in params)


def test_parameter_names_resnet():
    cfg = make_cfg(True, encoder_conv_architecture="resnet_impala")
    model = create_actor_critic(cfg, img_space((3, 32, 32)), spaces.Discrete(3))
    params = {n for n, _ in model.named_parameters()}
    assert "encoder.encoders.obs.conv_head.0.weight" in params
    assert "encoder.encoders.obs.conv_head.2.res_block_core.1.weight" in params
    assert "encoder.encoders.obs.conv_head.2.res_block_core.3.weight" in params
    assert "encoder.encoders.obs.mlp_layers.0.weight" in params


# ------------------------------------------------------------------------------------------------
# Weight initialization
# ------------------------------------------------------------------------------------------------


def _linear_and_conv(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Conv2d)]


@pytest.mark.parametrize("gain", [1.0, 1.41421356])
@pytest.mark.parametrize("shared", [True, False])
def test_orthogonal_init(shared, gain):
    cfg = make_cfg(True, actor_critic_share_weights=shared, policy_init_gain=gain)
    model = create_actor_critic(cfg, dict_space(), spaces.Discrete(4))
    layers = _linear_and_conv(model)
    assert len(layers) >= 6
    for name, layer in layers:
        assert (layer.bias == 0).all(), f"{name}: biases zeroed"
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1).double()
        rows, cols = w.shape
        gram = w @ w.T if rows <= cols else w.T @ w
        torch.testing.assert_close(gram, gain**2 * torch.eye(min(rows, cols), dtype=torch.float64), atol=1e-4, rtol=1e-4, msg=name)
    # RNNs keep torch's own init (Sample Factory doesn't touch them); their biases are not zeroed
    core = model.core.core if shared else model.actor_core.core
    assert (core.bias_ih_l0 != 0).any()


def test_xavier_and_torch_default_init():
    cfg = make_cfg(True, policy_initialization="xavier_uniform", policy_init_gain=1.0)
    model = create_actor_critic(cfg, dict_space(), spaces.Discrete(4))
    for name, layer in _linear_and_conv(model):
        assert (layer.bias == 0).all(), name
        fan_in = layer.weight[0].numel()
        fan_out = layer.weight.shape[0] * (layer.weight[0, 0].numel() if layer.weight.dim() > 2 else 1)
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= bound + 1e-6, name
    cfg = make_cfg(True, policy_initialization="torch_default")
    model = create_actor_critic(cfg, vec_space(), spaces.Discrete(4))
    for name, layer in _linear_and_conv(model):
        assert (layer.bias == 0).all(), f"{name}: biases zeroed for every scheme"
        w = layer.weight.detach()
        assert not torch.allclose(w @ w.T, torch.eye(w.shape[0]), atol=1e-2)


# ------------------------------------------------------------------------------------------------
# PackedSequence (learner) path of the RNN cores
# ------------------------------------------------------------------------------------------------

SEQ_LENGTHS = [5, 2, 7, 1, 4]


def _packed_inputs(feature_size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randn(n, feature_size, generator=g) for n in SEQ_LENGTHS]
    return seqs, pack_sequence(seqs, enforce_sorted=False)


def _step_by_step(core_fn, seqs: List[Tensor], states: Tensor) -> Tuple[List[Tensor], Tensor]:
    outputs = []
    finals = []
    for i, seq in enumerate(seqs):
        h = states[i : i + 1]
        outs = []
        for t in range(seq.shape[0]):
            o, h = core_fn(seq[t : t + 1], h)
            outs.append(o)
        outputs.append(torch.cat(outs))
        finals.append(h)
    return outputs, torch.cat(finals)


@pytest.mark.parametrize("core", ["gru", "lstm", "gru2", "lstm2"])
def test_core_rnn_packed_sequence_matches_loop(core):
    torch.manual_seed(0)
    cfg = make_cfg(True, **CORES[core])
    rnn_core = default_make_core_func(cfg, 12)
    assert isinstance(rnn_core, ModelCoreRNN) and rnn_core.get_out_size() == cfg.rnn_size
    seqs, packed = _packed_inputs(12)
    states = torch.randn(len(seqs), get_rnn_size(cfg)) * 0.5
    with torch.no_grad():
        out_packed, new_states = rnn_core(packed, states)
        ref_outputs, ref_states = _step_by_step(rnn_core, seqs, states)
    assert isinstance(out_packed, nn.utils.rnn.PackedSequence)
    padded, lengths = pad_packed_sequence(out_packed, batch_first=True)
    assert lengths.tolist() == SEQ_LENGTHS
    for i, ref in enumerate(ref_outputs):
        torch.testing.assert_close(padded[i, : SEQ_LENGTHS[i]], ref, rtol=1e-5, atol=1e-6)
    assert new_states.shape == (len(seqs), get_rnn_size(cfg))
    torch.testing.assert_close(new_states, ref_states, rtol=1e-5, atol=1e-6)


def test_core_rnn_state_layout():
    """Flat LSTM state per sample is layer-major, each layer [h | c]; torch's layout is [L, B, W]."""
    cfg = make_cfg(True, rnn_type="lstm", rnn_num_layers=2)
    rnn_core = ModelCoreRNN(cfg, 6)
    x = torch.randn(3, 6)
    states = torch.randn(3, get_rnn_size(cfg))
    w = cfg.rnn_size
    s = states.view(3, 2, 2 * w)
    h0 = s[:, :, :w].permute(1, 0, 2).contiguous()
    c0 = s[:, :, w:].permute(1, 0, 2).contiguous()
    with torch.no_grad():
        out, new = rnn_core(x, states)
        ref_out, (h, c) = rnn_core.core(x.unsqueeze(0), (h0, c0))
    torch.testing.assert_close(out, ref_out.squeeze(0))
    expected = torch.cat((h, c), dim=2).permute(1, 0, 2).reshape(3, -1)
    torch.testing.assert_close(new, expected)


def test_identity_core():
    cfg = make_cfg(True, use_rnn=False)
    core = default_make_core_func(cfg, 9)
    assert isinstance(core, ModelCoreIdentity) and core.get_out_size() == 9
    x, s = torch.randn(2, 9), torch.randn(2, 1)
    out, new = core(x, s)
    assert out is x and new is s


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "separate"])
@pytest.mark.parametrize("core", ["gru", "lstm2"])
def test_actor_critic_forward_core_packed_matches_loop(core, shared):
    torch.manual_seed(1)
    cfg = make_cfg(True, **CORES[core], actor_critic_share_weights=shared)
    model = create_actor_critic(cfg, vec_space(), spaces.Discrete(3))
    with torch.no_grad():
        obs = random_obs(vec_space(), sum(SEQ_LENGTHS), seed=3)
        head = model.forward_head(model.normalize_obs(obs))
        seqs = list(torch.split(head, SEQ_LENGTHS))
        packed = pack_sequence(seqs, enforce_sorted=False)
        states = torch.randn(len(seqs), get_rnn_size(cfg)) * 0.5
        out_packed, new_states = model.forward_core(packed, states)
        ref_outputs, ref_states = _step_by_step(model.forward_core, seqs, states)
    padded, _ = pad_packed_sequence(out_packed, batch_first=True)
    for i, ref in enumerate(ref_outputs):
        torch.testing.assert_close(padded[i, : SEQ_LENGTHS[i]], ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(new_states, ref_states, rtol=1e-5, atol=1e-6)
    # the learner feeds the unpacked core outputs to forward_tail
    tail = model.forward_tail(out_packed.data, values_only=False, sample_actions=False)
    assert tail["values"].shape == (sum(SEQ_LENGTHS),)


def test_eager_only_attributes_are_ignored_by_torchscript():
    """Modules keep cfg / action_space for eager code; TorchScript is told to skip them (fast compiles)."""
    cfg = make_cfg(True, actor_critic_share_weights=False)
    model = create_actor_critic(cfg, dict_space(), ACTIONS["tuple"][0])
    holders = [m for m in model.modules() if "cfg" in vars(m)]
    assert len(holders) >= 8
    for m in holders:
        assert "cfg" in getattr(m, "__jit_ignored_attributes__", []), type(m).__name__
    for m in (model, model.action_parameterization):
        assert "action_space" in m.__jit_ignored_attributes__
    scripted = torch.jit.script(model)
    assert set(scripted.state_dict()) == set(model.state_dict())


@pytest.mark.parametrize("space, conv", [
    (spaces.Dict(obs=spaces.Box(0, 255, (3, 72, 128), dtype=np.uint8)), True),
    (spaces.Dict(obs=spaces.Box(-1, 1, (4,))), False),
    (spaces.Box(0, 255, (84, 84)), True),  # a bare (not Dict) space counts too
    (spaces.Dict(obs=spaces.Box(-1, 1, (4,)), screen=spaces.Box(0, 1, (1, 8, 8))), True),
    (spaces.Dict(obs=spaces.Box(-1, 1, (4,)), action_mask=spaces.MultiBinary(3)), False),
])
def test_conv_models_are_recognised_by_their_observation_shapes(space, conv):
    assert has_conv_encoder(space) is conv
