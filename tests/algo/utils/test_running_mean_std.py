"""Running mean/std normalizers (pysf.algo.utils.running_mean_std) and ObservationNormalizer (pysf.utils.normalize)."""

from __future__ import annotations

import argparse
import warnings
from typing import Dict, Optional

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import Tensor, nn

from pysf.algo.utils.running_mean_std import (
    RunningMeanStdDictInPlace,
    RunningMeanStdInPlace,
    running_mean_std_summaries,
)
from pysf.cfg.arguments import default_cfg
from pysf.utils.normalize import ObservationNormalizer

EPS = 1e-5
CLIP = 5.0


def merge_with_prior(data: np.ndarray, axis) -> tuple:
    """Expected running stats: the prior (mean 0, var 1, count 1) merged with all data at once.

    The parallel-variance merge is exact, so incremental updates must equal one merge of the
    population moments (numpy, ddof=0) of everything seen.
    """
    n = np.prod([data.shape[a] for a in axis])
    mean = data.mean(axis=axis, dtype=np.float64)
    var = data.var(axis=axis, dtype=np.float64)
    tot = 1.0 + n
    delta = mean - 0.0
    new_mean = delta * n / tot
    m2 = 1.0 * 1.0 + var * n + delta**2 * 1.0 * n / tot
    return new_mean, m2 / tot, tot


def normalize_ref(x: np.ndarray, mean: np.ndarray, var: np.ndarray, norm_only: bool = False, clip: float = CLIP):
    y = x if norm_only else x - mean
    return np.clip(y / np.sqrt(var + EPS), -clip, clip)


# ------------------------------------------------------------------------------------------------
# RunningMeanStdInPlace
# ------------------------------------------------------------------------------------------------


def test_initial_buffers():
    rms = RunningMeanStdInPlace((3, 2))
    assert rms.running_mean.dtype == torch.float64 and rms.running_mean.shape == (3, 2)
    assert rms.running_var.dtype == torch.float64 and rms.running_var.shape == (3, 2)
    assert rms.count.dtype == torch.float64 and rms.count.shape == (1,)
    assert (rms.running_mean == 0).all() and (rms.running_var == 1).all() and rms.count.item() == 1
    assert sorted(n for n, _ in rms.named_buffers()) == ["count", "running_mean", "running_var"]
    assert list(rms.parameters()) == []
    # buffers are part of the state dict (checkpointed with the model)
    assert set(rms.state_dict()) == {"running_mean", "running_var", "count"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_running_stats_match_numpy(dtype):
    rng = np.random.default_rng(0)
    rms = RunningMeanStdInPlace((4,))
    batches = [rng.normal(loc=[1.0, -3.0, 0.0, 10.0], scale=[0.5, 2.0, 1.0, 4.0], size=(n, 4)) for n in (7, 64, 1, 33, 200)]
    seen = []
    for b in batches:
        x = torch.tensor(b, dtype=dtype)
        rms(x)
        seen.append(b)
        data = np.concatenate(seen).astype(np.float32 if dtype == torch.float32 else np.float64).astype(np.float64)
        mean, var, count = merge_with_prior(data, axis=(0,))
        np.testing.assert_allclose(rms.running_mean.numpy(), mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(rms.running_var.numpy(), var, rtol=1e-9, atol=1e-9)
        assert rms.count.item() == count
    # With lots of data the prior pseudo-sample is negligible: plain numpy statistics.
    np.testing.assert_allclose(rms.running_mean.numpy(), data.mean(0), rtol=0, atol=0.05)
    np.testing.assert_allclose(rms.running_var.numpy(), data.var(0), rtol=0.05, atol=0.01)


def test_normalizes_in_place_with_updated_stats():
    rng = np.random.default_rng(1)
    data = rng.normal(5.0, 3.0, size=(128, 3)).astype(np.float32).astype(np.float64)
    rms = RunningMeanStdInPlace((3,))
    x = torch.tensor(data, dtype=torch.float32)
    ptr = x.data_ptr()
    out = rms(x)
    assert out is None, "normalizes in place"
    assert x.data_ptr() == ptr
    mean, var, _ = merge_with_prior(data, axis=(0,))
    np.testing.assert_allclose(x.numpy(), normalize_ref(data, mean, var), rtol=1e-5, atol=1e-5)


def test_normalize_denormalize_roundtrip():
    rng = np.random.default_rng(2)
    rms = RunningMeanStdInPlace((5,))
    for _ in range(3):
        rms(torch.tensor(rng.normal(2.0, 4.0, size=(256, 5)), dtype=torch.float32))
    rms.eval()
    before = (rms.running_mean.clone(), rms.running_var.clone(), rms.count.clone())
    x = torch.tensor(rng.normal(2.0, 4.0, size=(64, 5)), dtype=torch.float32)
    std = np.sqrt(rms.running_var.numpy() + EPS)
    inside = np.abs((x.numpy() - rms.running_mean.numpy()) / std) < CLIP
    y = x.clone()
    rms(y)
    assert (y.abs() <= CLIP).all()
    rms(y, denormalize=True)
    torch.testing.assert_close(y[torch.tensor(inside)], x[torch.tensor(inside)], rtol=1e-5, atol=1e-4)
    # denormalize never updates the statistics, even in training mode
    rms.train()
    z = torch.randn(8, 5) * 100
    rms(z, denormalize=True)
    assert torch.equal(rms.running_mean, before[0]) and torch.equal(rms.running_var, before[1])
    assert torch.equal(rms.count, before[2])


def test_denormalize_formula_and_clip():
    rms = RunningMeanStdInPlace((2,), clip=3.0)
    rms.running_mean.copy_(torch.tensor([1.0, -2.0], dtype=torch.float64))
    rms.running_var.copy_(torch.tensor([4.0, 9.0], dtype=torch.float64))
    rms.eval()
    x = torch.tensor([[0.5, -10.0], [10.0, 1.0]])
    rms(x, denormalize=True)
    std = torch.sqrt(torch.tensor([4.0, 9.0]) + EPS)
    expected = torch.clamp(torch.tensor([[0.5, -10.0], [10.0, 1.0]]), -3, 3) * std + torch.tensor([1.0, -2.0])
    torch.testing.assert_close(x, expected)


@pytest.mark.parametrize("clip", [5.0, 1.5])
def test_clip(clip):
    rms = RunningMeanStdInPlace((3,), clip=clip)
    rms.eval()  # prior stats: mean 0, var 1
    x = torch.tensor([[100.0, -100.0, 0.5]])
    rms(x)
    torch.testing.assert_close(x, torch.tensor([[clip, -clip, 0.5 / np.sqrt(1 + EPS)]], dtype=torch.float32))


def test_eval_mode_does_not_update():
    rms = RunningMeanStdInPlace((3,))
    rms.eval()
    x = torch.randn(32, 3) * 7 + 4
    expected = normalize_ref(x.numpy().astype(np.float64), np.zeros(3), np.ones(3))
    rms(x)
    assert (rms.running_mean == 0).all() and (rms.running_var == 1).all() and rms.count.item() == 1
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)
    rms.train()
    rms(torch.randn(32, 3) * 7 + 4)
    assert rms.count.item() == 33


def test_wrong_shape_raises_in_training():
    rms = RunningMeanStdInPlace((3,))
    with pytest.raises(ValueError, match="shape"):
        rms(torch.zeros(4, 5))


@pytest.mark.parametrize("shape", [(3, 6, 5), (4, 7), (6,)])
def test_per_channel(shape):
    rng = np.random.default_rng(3)
    rms = RunningMeanStdInPlace(shape, per_channel=True)
    assert rms.running_mean.shape == (shape[0],) and rms.running_var.shape == (shape[0],)
    channel_loc = np.arange(shape[0], dtype=np.float64).reshape((1, shape[0]) + (1,) * (len(shape) - 1)) * 3
    seen = []
    axis = (0,) + tuple(range(2, len(shape) + 1))
    for n in (5, 9, 2):
        b = rng.normal(size=(n,) + shape) * 2 + channel_loc
        rms(torch.tensor(b, dtype=torch.float64))
        seen.append(b)
        data = np.concatenate(seen)
        mean, var, count = merge_with_prior(data, axis=axis)
        np.testing.assert_allclose(rms.running_mean.numpy(), mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(rms.running_var.numpy(), var, rtol=1e-9, atol=1e-9)
        assert rms.count.item() == count
    # normalization broadcasts the per-channel statistics
    rms.eval()
    x = rng.normal(size=(4,) + shape) * 2 + channel_loc
    t = torch.tensor(x, dtype=torch.float32)
    rms(t)
    view = (1, shape[0]) + (1,) * (len(shape) - 1)
    expected = normalize_ref(x, rms.running_mean.numpy().reshape(view), rms.running_var.numpy().reshape(view))
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_per_channel_rejects_4d():
    with pytest.raises(ValueError):
        RunningMeanStdInPlace((2, 3, 4, 5), per_channel=True)


def test_norm_only():
    rng = np.random.default_rng(4)
    data = rng.normal(3.0, 2.0, size=(100, 2)).astype(np.float32).astype(np.float64)
    rms = RunningMeanStdInPlace((2,), norm_only=True)
    x = torch.tensor(data, dtype=torch.float32)
    rms(x)
    mean, var, _ = merge_with_prior(data, axis=(0,))
    # the mean is still tracked but not subtracted
    np.testing.assert_allclose(rms.running_mean.numpy(), mean, rtol=1e-9)
    np.testing.assert_allclose(x.numpy(), normalize_ref(data, mean, var, norm_only=True), rtol=1e-5, atol=1e-5)
    rms.eval()
    y = torch.tensor([[1.0, -1.0]])
    rms(y)
    rms(y, denormalize=True)
    torch.testing.assert_close(y, torch.tensor([[1.0, -1.0]]), rtol=1e-5, atol=1e-5)


def test_scalar_return_normalizer_shape():
    """The returns normalizer is RunningMeanStdInPlace((1,)) fed [B, 1] tensors."""
    rms = RunningMeanStdInPlace((1,))
    r = torch.arange(10, dtype=torch.float32).unsqueeze(1)
    rms(r)
    mean, var, _ = merge_with_prior(np.arange(10, dtype=np.float64).reshape(10, 1), axis=(0,))
    np.testing.assert_allclose(rms.running_mean.numpy(), mean)
    np.testing.assert_allclose(rms.running_var.numpy(), var)


class _Denormalizer(nn.Module):
    def __init__(self, rms: nn.Module):
        super().__init__()
        self.rms = rms

    def forward(self, x: Tensor) -> Tensor:
        y = x.clone()
        self.rms(y, True)
        return y


@pytest.mark.parametrize(
    "shape,kwargs",
    [((4,), {}), ((3, 5, 6), {"per_channel": True}), ((2,), {"norm_only": True, "clip": 2.0}), ((2, 3), {})],
    ids=["vec", "chw_per_channel", "norm_only", "2d"],
)
def test_running_mean_std_torchscript_matches_eager(shape, kwargs):
    torch.manual_seed(0)
    eager = RunningMeanStdInPlace(shape, **kwargs)
    scripted = torch.jit.script(RunningMeanStdInPlace(shape, **kwargs))
    for _ in range(3):
        x = torch.randn((16,) + shape) * 3 + 1
        xe, xs = x.clone(), x.clone()
        eager(xe)
        scripted(xs)
        torch.testing.assert_close(xs, xe, rtol=0, atol=0)
        for name in ("running_mean", "running_var", "count"):
            torch.testing.assert_close(getattr(scripted, name), getattr(eager, name), rtol=0, atol=0)
    eager.eval()
    scripted.eval()
    x = torch.randn((8,) + shape)
    xe, xs = x.clone(), x.clone()
    eager(xe)
    scripted(xs)
    torch.testing.assert_close(xs, xe, rtol=0, atol=0)
    assert torch.equal(scripted.count, eager.count)
    de = _Denormalizer(eager)
    ds = _Denormalizer(scripted)
    torch.testing.assert_close(ds(x), de(x), rtol=0, atol=0)
    # compiled as a submodule (how the actor-critic holds it), denormalize included
    wrapped = torch.jit.script(_Denormalizer(RunningMeanStdInPlace(shape, **kwargs)))
    wrapped.rms.load_state_dict(eager.state_dict())
    wrapped.eval()
    torch.testing.assert_close(wrapped(x), de(x), rtol=0, atol=0)


def test_scripted_state_dict_roundtrip():
    eager = RunningMeanStdInPlace((3,))
    eager(torch.randn(50, 3) * 2 + 1)
    scripted = torch.jit.script(RunningMeanStdInPlace((3,)))
    scripted.load_state_dict(eager.state_dict())
    eager.eval()
    scripted.eval()
    x = torch.randn(4, 3)
    xe, xs = x.clone(), x.clone()
    eager(xe)
    scripted(xs)
    assert torch.equal(xe, xs)


# ------------------------------------------------------------------------------------------------
# RunningMeanStdDictInPlace
# ------------------------------------------------------------------------------------------------


def test_input_shape_stays_the_given_tuple():
    """Sample Factory keeps the space's shape tuple; the scripted module exposes the same value."""
    rms = RunningMeanStdInPlace((3, 4, 5), per_channel=True)
    assert rms.input_shape == (3, 4, 5) and type(rms.input_shape) is tuple
    assert torch.jit.script(rms).input_shape == (3, 4, 5)
    space_shape = spaces.Box(-1, 1, (7,)).shape
    assert RunningMeanStdInPlace(space_shape).input_shape == space_shape
    assert RunningMeanStdInPlace([2, 3]).input_shape == (2, 3), "a list becomes the equal tuple"
    assert RunningMeanStdInPlace(np.array([2, 3])).input_shape == (2, 3) and all(
        type(d) is int for d in RunningMeanStdInPlace(np.array([2, 3])).input_shape
    )
    dict_rms = RunningMeanStdDictInPlace(_dict_space())
    assert dict_rms.running_mean_std["img"].input_shape == (3, 4, 5)


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "scripted"])
def test_shape_one_normalizer_takes_1d_batches(scripted):
    """As in Sample Factory, a (1,) normalizer (e.g. of returns) accepts [B] as well as [B, 1]."""
    flat, column = RunningMeanStdInPlace((1,)), RunningMeanStdInPlace((1,))
    if scripted:
        flat, column = torch.jit.script(flat), torch.jit.script(column)
    x = torch.arange(8, dtype=torch.float32)
    y = x.clone().unsqueeze(1)
    ptr = x.data_ptr()
    flat(x)
    column(y)
    assert x.shape == (8,) and x.data_ptr() == ptr, "normalized in place, shape kept"
    torch.testing.assert_close(x, y.squeeze(1))
    torch.testing.assert_close(flat.running_var, column.running_var)
    flat(x, denormalize=True)
    torch.testing.assert_close(x, torch.arange(8, dtype=torch.float32), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "scripted"])
def test_scalar_observation_shape(scripted):
    """Box(shape=()) observations: one statistic, [B] batches; compiles with TorchScript."""
    rms = RunningMeanStdInPlace(())
    if scripted:
        rms = torch.jit.script(rms)
    assert rms.input_shape == ()
    data = np.random.default_rng(3).normal(2.0, 3.0, size=16)
    x = torch.tensor(data, dtype=torch.float64)
    rms(x)
    mean, var, _ = merge_with_prior(data.reshape(16, 1), axis=(0,))
    assert rms.running_mean.shape == ()
    np.testing.assert_allclose(rms.running_mean.numpy(), mean[0])
    np.testing.assert_allclose(x.numpy(), normalize_ref(data, mean[0], var[0]), rtol=1e-6, atol=1e-6)


def _dict_space() -> spaces.Dict:
    return spaces.Dict(
        {
            "obs": spaces.Box(-10, 10, (4,)),
            "img": spaces.Box(0, 255, (3, 4, 5)),
            "measurements": spaces.Box(-1, 1, (2,)),
        }
    )


def test_dict_all_keys():
    rms = RunningMeanStdDictInPlace(_dict_space())
    assert set(rms.running_mean_std.keys()) == {"obs", "img", "measurements"}
    assert rms.running_mean_std["img"].running_mean.shape == (3, 4, 5)
    names = {n for n, _ in rms.named_buffers()}
    assert "running_mean_std.obs.running_mean" in names
    assert "running_mean_std.img.count" in names
    x = {k: torch.randn((8,) + s.shape) * 3 + 2 for k, s in _dict_space().spaces.items()}
    orig = {k: v.clone() for k, v in x.items()}
    rms(x)
    for k in x:
        ref = RunningMeanStdInPlace(_dict_space()[k].shape)
        y = orig[k].clone()
        ref(y)
        torch.testing.assert_close(x[k], y)
        torch.testing.assert_close(rms.running_mean_std[k].running_var, ref.running_var)


def test_dict_keys_to_normalize():
    rms = RunningMeanStdDictInPlace(_dict_space(), keys_to_normalize=["obs", "measurements"])
    assert set(rms.running_mean_std.keys()) == {"obs", "measurements"}
    x = {k: torch.randn((8,) + s.shape) * 3 + 2 for k, s in _dict_space().spaces.items()}
    img = x["img"].clone()
    obs = x["obs"].clone()
    rms(x)
    assert torch.equal(x["img"], img), "keys not listed are left alone"
    assert not torch.equal(x["obs"], obs)
    # empty list / None mean every key (Sample Factory treats a falsy value as "all keys")
    assert set(RunningMeanStdDictInPlace(_dict_space(), keys_to_normalize=None).running_mean_std.keys()) == {
        "obs",
        "img",
        "measurements",
    }
    assert len(RunningMeanStdDictInPlace(_dict_space(), keys_to_normalize=[]).running_mean_std) == 3


def test_dict_unknown_key_raises():
    with pytest.raises(ValueError, match="nope"):
        RunningMeanStdDictInPlace(_dict_space(), keys_to_normalize=["obs", "nope"])


def test_dict_kwargs_propagate():
    rms = RunningMeanStdDictInPlace(_dict_space(), per_channel=True, norm_only=True, clip=2.0)
    sub = rms.running_mean_std["img"]
    assert sub.per_channel and sub.norm_only and sub.clip == 2.0
    assert sub.running_mean.shape == (3,)


def test_dict_torchscript_matches_eager():
    torch.manual_seed(0)
    eager = RunningMeanStdDictInPlace(_dict_space(), keys_to_normalize=["img", "obs"])
    scripted = torch.jit.script(RunningMeanStdDictInPlace(_dict_space(), keys_to_normalize=["img", "obs"]))
    for training in (True, True, False):
        eager.train(training)
        scripted.train(training)
        x = {k: torch.randn((6,) + s.shape) * 4 - 1 for k, s in _dict_space().spaces.items()}
        xe = {k: v.clone() for k, v in x.items()}
        xs = {k: v.clone() for k, v in x.items()}
        eager(xe)
        scripted(xs)
        for k in x:
            assert torch.equal(xe[k], xs[k]), k
    for name, buf in eager.named_buffers():
        assert torch.equal(buf, dict(scripted.named_buffers())[name]), name


def test_summaries():
    """Sample Factory's names and values: the last two parts of the buffer name, std = mean(sqrt(var + 1e-5))."""
    rms = RunningMeanStdDictInPlace(_dict_space())
    rms(
        {
            "obs": torch.randn(10, 4) + 3,
            "img": torch.randn(10, 3, 4, 5),
            "measurements": torch.randn(10, 2),
        }
    )
    s = running_mean_std_summaries(rms)
    assert set(s) == {f"{k}_running_{stat}" for k in ("obs", "img", "measurements") for stat in ("mean", "std")}
    torch.testing.assert_close(s["obs_running_mean"], rms.running_mean_std["obs"].running_mean.float().mean())
    torch.testing.assert_close(
        s["img_running_std"], (rms.running_mean_std["img"].running_var.float() + EPS).sqrt().mean()
    )
    # a scripted module has the same buffers, so the same summaries
    scripted = running_mean_std_summaries(torch.jit.script(rms))
    assert set(scripted) == set(s)
    for k in s:
        torch.testing.assert_close(scripted[k], s[k])
    # a bare normalizer (Sample Factory's returns normalizer; its actor-critic adds the "returns_" prefix)
    bare = RunningMeanStdInPlace((1,))
    bare(torch.tensor([[1.0], [3.0]]))
    s = running_mean_std_summaries(bare)
    assert set(s) == {"running_mean", "running_std"}
    torch.testing.assert_close(s["running_mean"], bare.running_mean.float().mean())
    torch.testing.assert_close(s["running_std"], (bare.running_var.float() + EPS).sqrt().mean())


# ------------------------------------------------------------------------------------------------
# ObservationNormalizer
# ------------------------------------------------------------------------------------------------


def _cfg(**overrides) -> argparse.Namespace:
    cfg = default_cfg(env="test_env")
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def _obs_space() -> spaces.Dict:
    return spaces.Dict({"obs": spaces.Box(0, 255, (3, 4, 4), dtype=np.uint8), "vec": spaces.Box(-5, 5, (3,))})


def _obs(batch: int = 6, seed: int = 0) -> Dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randint(0, 256, (batch, 3, 4, 4), generator=g, dtype=torch.uint8),
        "vec": torch.randn(batch, 3, generator=g) * 2 + 1,
    }


def _expected(obs: Dict[str, Tensor], sub_mean: float, scale: float, rms: Optional[RunningMeanStdDictInPlace]):
    out = {k: v.float().clone() for k, v in obs.items()}
    out["obs"] = (out["obs"] - sub_mean) * (1.0 / scale)
    if rms is not None:
        rms(out)
    return out


def test_observation_normalizer_defaults_normalize_input():
    """Defaults: obs_subtract_mean=0, obs_scale=1, normalize_input=True over all keys."""
    cfg = _cfg()
    assert cfg.normalize_input and cfg.obs_scale == 1.0 and cfg.obs_subtract_mean == 0.0
    norm = ObservationNormalizer(_obs_space(), cfg)
    assert norm.running_mean_std is not None
    assert set(norm.running_mean_std.running_mean_std.keys()) == {"obs", "vec"}


@pytest.mark.parametrize("normalize_input", [False, True])
@pytest.mark.parametrize("sub_mean,scale", [(0.0, 1.0), (128.0, 1.0), (0.0, 255.0), (128.0, 128.0)])
def test_observation_normalizer_combinations(sub_mean, scale, normalize_input):
    cfg = _cfg(obs_subtract_mean=sub_mean, obs_scale=scale, normalize_input=normalize_input)
    norm = ObservationNormalizer(_obs_space(), cfg)
    ref_rms = RunningMeanStdDictInPlace(_obs_space()) if normalize_input else None
    for step in range(3):
        obs = _obs(seed=step)
        orig = {k: v.clone() for k, v in obs.items()}
        out = norm(obs)
        # the input dict and its tensors are never modified
        assert set(obs) == set(orig)
        for k in obs:
            assert torch.equal(obs[k], orig[k]) and obs[k].dtype == orig[k].dtype
        if sub_mean == 0.0 and scale == 1.0 and not normalize_input:
            assert out is obs, "nothing configured: passthrough"
            continue
        assert out is not obs
        for k in out:
            assert out[k].dtype == torch.float32, "uint8 converted to float"
            assert out[k].data_ptr() != obs[k].data_ptr()
        expected = _expected(orig, sub_mean, scale, ref_rms)
        for k in out:
            torch.testing.assert_close(out[k], expected[k], rtol=1e-5, atol=1e-5)


def test_observation_normalizer_keys_and_eval():
    cfg = _cfg(normalize_input_keys=["vec"])
    norm = ObservationNormalizer(_obs_space(), cfg)
    assert set(norm.running_mean_std.running_mean_std.keys()) == {"vec"}
    obs = _obs()
    out = norm(obs)
    torch.testing.assert_close(out["obs"], obs["obs"].float(), rtol=0, atol=0)
    count = norm.running_mean_std.running_mean_std["vec"].count.clone()
    norm.eval()
    norm(_obs(seed=1))
    assert torch.equal(norm.running_mean_std.running_mean_std["vec"].count, count), "eval mode: no update"
    norm.train()
    norm(_obs(seed=2))
    assert norm.running_mean_std.running_mean_std["vec"].count.item() == count.item() + 6


def test_observation_normalizer_buffer_names():
    norm = ObservationNormalizer(_obs_space(), _cfg())
    names = {n for n, _ in norm.named_buffers()}
    assert "running_mean_std.running_mean_std.obs.running_mean" in names
    assert "running_mean_std.running_mean_std.vec.running_var" in names
    assert "running_mean_std.running_mean_std.vec.count" in names


def test_observation_normalizer_float64_input_is_converted():
    cfg = _cfg(normalize_input=False, obs_scale=2.0)
    norm = ObservationNormalizer(spaces.Dict({"obs": spaces.Box(-1, 1, (3,))}), cfg)
    x = {"obs": torch.tensor([[2.0, 4.0, -6.0]], dtype=torch.float64)}
    out = norm(x)
    assert out["obs"].dtype == torch.float32
    torch.testing.assert_close(out["obs"], torch.tensor([[1.0, 2.0, -3.0]]))
    assert x["obs"].dtype == torch.float64 and x["obs"][0, 0].item() == 2.0


@pytest.mark.parametrize(
    "overrides",
    [
        dict(normalize_input=False),
        dict(normalize_input=False, obs_scale=255.0),
        dict(normalize_input=True),
        dict(normalize_input=True, obs_subtract_mean=100.0, obs_scale=50.0),
        dict(normalize_input=True, normalize_input_keys=["vec"]),
    ],
    ids=["passthrough", "scale", "normalize", "all", "keys"],
)
def test_observation_normalizer_torchscript_matches_eager(overrides):
    cfg = _cfg(**overrides)
    eager = ObservationNormalizer(_obs_space(), cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scripted = torch.jit.script(ObservationNormalizer(_obs_space(), cfg))
    # compiling is silent (torch's blanket torch.jit DeprecationWarning aside)
    assert [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)] == []
    for step, training in enumerate((True, True, False)):
        eager.train(training)
        scripted.train(training)
        obs = _obs(seed=step)
        orig = {k: v.clone() for k, v in obs.items()}
        oe = eager(obs)
        os_ = scripted(obs)
        for k in orig:
            assert torch.equal(obs[k], orig[k]), "input not modified"
            assert oe[k].dtype == os_[k].dtype
            assert torch.equal(oe[k], os_[k]), k
    for name, buf in eager.named_buffers():
        assert torch.equal(buf, dict(scripted.named_buffers())[name]), name
