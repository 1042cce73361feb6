"""Action distributions (pysf.algo.utils.action_distributions) against torch.distributions references.

Covers the TorchScript heads (``make_distribution_head``) and Sample Factory's eager objects
(``get_action_distribution``): log-prob, entropy, KL, sampling statistics, argmax, action masks,
symmetric KL with a uniform prior, action shapes/dtypes, TorchScript compilation, and the helpers
``calc_num_actions`` / ``calc_num_action_parameters``.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from pysf.algo.utils.action_distributions import (
    CategoricalActionDistribution,
    ContinuousActionDistribution,
    DistributionHead,
    TupleActionDistribution,
    argmax_actions,
    calc_action_mask_width,
    calc_num_action_parameters,
    calc_num_actions,
    get_action_distribution,
    is_continuous_action_space,
    make_distribution_head,
    sample_actions_log_probs,
)

B = 16

SPACES = {
    "discrete": spaces.Discrete(5),
    "box1": spaces.Box(-1.0, 1.0, shape=(1,)),
    "box3": spaces.Box(-1.0, 1.0, shape=(3,)),
    "multidiscrete": spaces.MultiDiscrete([3, 4, 2]),
    "tuple": spaces.Tuple((spaces.Discrete(3), spaces.Box(-1.0, 1.0, shape=(2,)), spaces.Discrete(4))),
    "nested": spaces.Tuple(
        (spaces.Discrete(2), spaces.Tuple((spaces.MultiDiscrete([2, 3]), spaces.Box(-1.0, 1.0, shape=(1,)))))
    ),
}
SPACE_NAMES = list(SPACES)
DISCRETE_NAMES = ["discrete", "multidiscrete", "tuple", "nested"]  # spaces with at least one discrete component


# ------------------------------------------------------------------------------------------------
# Reference distributions built from torch.distributions
# ------------------------------------------------------------------------------------------------


def _components(space) -> list:
    """Flat list of (kind, size) components: ('cat', n) or ('gauss', k)."""
    if isinstance(space, spaces.Discrete):
        return [("cat", int(space.n))]
    if isinstance(space, spaces.Box):
        return [("gauss", int(space.shape[0]))]
    if isinstance(space, spaces.MultiDiscrete):
        return [("cat", int(n)) for n in space.nvec]
    if isinstance(space, spaces.Tuple):
        return [c for s in space.spaces for c in _components(s)]
    raise AssertionError(space)


def _mask_for(mask: Optional[Tensor], kind: str, offset: int, size: int):
    if mask is None or kind != "cat":
        return None
    return mask[:, offset : offset + size]


def _ref_dists(space, params: Tensor, mask: Optional[Tensor] = None) -> list:
    """One torch.distributions object per component (masked categoricals renormalized over allowed)."""
    dists = []
    p_off = 0
    m_off = 0
    for kind, size in _components(space):
        if kind == "cat":
            logits = params[:, p_off : p_off + size]
            if mask is not None:
                allowed = mask[:, m_off : m_off + size] != 0
                logits = logits.masked_fill(~allowed, float("-inf"))
            dists.append(Categorical(logits=logits))
            p_off += size
            m_off += size
        else:
            means = params[:, p_off : p_off + size]
            log_std = params[:, p_off + size : p_off + 2 * size]
            dists.append(Independent(Normal(means, log_std.exp()), 1))
            p_off += 2 * size
    return dists


def _split_actions(space, actions: Tensor) -> List[Tensor]:
    """Actions [B, num_actions] (or [B]) -> per-component action tensors for torch.distributions."""
    actions = actions.reshape(actions.shape[0], -1)
    out = []
    off = 0
    for kind, size in _components(space):
        if kind == "cat":
            out.append(actions[:, off].long())
            off += 1
        else:
            out.append(actions[:, off : off + size].float())
            off += size
    return out


def ref_log_prob(space, params, actions, mask=None) -> Tensor:
    dists = _ref_dists(space, params, mask)
    return sum(d.log_prob(a) for d, a in zip(dists, _split_actions(space, actions)))


def ref_entropy(space, params, mask=None) -> Tensor:
    # torch's masked Categorical entropy is fine with -inf logits (it zeroes p*log p where p == 0).
    return sum(d.entropy() for d in _ref_dists(space, params, mask))


def ref_kl(space, params, other, mask=None) -> Tensor:
    result = 0
    for d, o, (kind, _) in zip(_ref_dists(space, params, mask), _ref_dists(space, other, mask), _components(space)):
        if kind == "cat" and mask is not None:
            # torch's KL of two categoricals gives nan with -inf logits on both sides; compute directly.
            p = d.probs
            result = result + torch.where(p > 0, p * (d.logits - o.logits), torch.zeros_like(p)).sum(-1)
        else:
            result = result + kl_divergence(d, o)
    return result


def random_params(space, batch: int = B, generator: Optional[torch.Generator] = None) -> Tensor:
    return torch.randn(batch, calc_num_action_parameters(space), generator=generator, dtype=torch.float32) * 1.5


def random_mask(space, batch: int = B, seed: int = 0) -> Tensor:
    """A 0/1 mask over the discrete categories with at least one allowed entry per component and row."""
    g = torch.Generator().manual_seed(seed)
    width = calc_action_mask_width(space)
    mask = (torch.rand(batch, width, generator=g) < 0.6).to(torch.int64)
    off = 0
    for kind, size in _components(space):
        if kind != "cat":
            continue
        block = mask[:, off : off + size]
        forced = torch.randint(0, size, (batch,), generator=g)
        block[torch.arange(batch), forced] = 1
        off += size
    return mask


def random_actions(space, batch: int = B, mask: Optional[Tensor] = None, seed: int = 1) -> Tensor:
    """Valid actions in the model output convention (allowed categories only when masked)."""
    g = torch.Generator().manual_seed(seed)
    cols = []
    m_off = 0
    for kind, size in _components(space):
        if kind == "cat":
            if mask is None:
                a = torch.randint(0, size, (batch,), generator=g)
            else:
                allowed = mask[:, m_off : m_off + size].float()
                a = torch.multinomial(allowed, 1, generator=g).squeeze(1)
                m_off += size
            cols.append(a.unsqueeze(1).float())
        else:
            cols.append(torch.randn(batch, size, generator=g))
    actions = torch.cat(cols, dim=1)
    if isinstance(space, spaces.Discrete):
        return actions[:, 0].long()
    if isinstance(space, spaces.MultiDiscrete):
        return actions.long()
    if isinstance(space, spaces.Box) and space.shape[0] == 1:
        return actions[:, 0]
    return actions


def expected_action_shape_dtype(space, batch: int):
    if isinstance(space, spaces.Discrete):
        return (batch,), torch.int64
    if isinstance(space, spaces.Box):
        k = space.shape[0]
        return ((batch,) if k == 1 else (batch, k)), torch.float32
    if isinstance(space, spaces.MultiDiscrete):
        return (batch, len(space.nvec)), torch.int64
    return (batch, calc_num_actions(space)), torch.float32


def close(a: Tensor, b: Tensor, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    torch.testing.assert_close(a.double(), b.double(), atol=atol, rtol=rtol)


# ------------------------------------------------------------------------------------------------
# Sizes and unsupported spaces
# ------------------------------------------------------------------------------------------------


def test_calc_num_actions_and_parameters():
    assert calc_num_actions(spaces.Discrete(7)) == 1
    assert calc_num_action_parameters(spaces.Discrete(7)) == 7
    assert calc_num_actions(spaces.Box(-1, 1, (1,))) == 1
    assert calc_num_action_parameters(spaces.Box(-1, 1, (1,))) == 2
    assert calc_num_actions(spaces.Box(-1, 1, (3,))) == 3
    assert calc_num_action_parameters(spaces.Box(-1, 1, (3,))) == 6
    assert calc_num_actions(spaces.MultiDiscrete([3, 4, 2])) == 3
    assert calc_num_action_parameters(spaces.MultiDiscrete([3, 4, 2])) == 9
    tup = SPACES["tuple"]
    assert calc_num_actions(tup) == 1 + 2 + 1
    assert calc_num_action_parameters(tup) == 3 + 4 + 4
    nested = spaces.Tuple((spaces.Discrete(2), spaces.Tuple((spaces.Discrete(3), spaces.Box(-1, 1, (2,))))))
    assert calc_num_actions(nested) == 1 + 1 + 2
    assert calc_num_action_parameters(nested) == 2 + 3 + 4
    assert calc_action_mask_width(tup) == 7
    assert calc_action_mask_width(spaces.Box(-1, 1, (3,))) == 0
    assert is_continuous_action_space(spaces.Box(-1, 1, (3,)))
    assert not is_continuous_action_space(spaces.Discrete(3))
    assert not is_continuous_action_space(tup)


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(-1, 1, (2, 3)),
        spaces.Dict({"a": spaces.Discrete(3)}),
        spaces.MultiBinary(4),
        spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (2, 2)))),
        spaces.Tuple((spaces.Discrete(2), spaces.Dict({"a": spaces.Discrete(3)}))),
    ],
    ids=["box2d", "dict", "multibinary", "tuple_box2d", "tuple_dict"],
)
def test_unsupported_spaces_raise(space):
    with pytest.raises(NotImplementedError):
        calc_num_actions(space)
    with pytest.raises(NotImplementedError):
        calc_num_action_parameters(space)
    with pytest.raises(NotImplementedError):
        make_distribution_head(space)
    with pytest.raises(NotImplementedError):
        get_action_distribution(space, torch.zeros(2, 4))


def test_head_and_distribution_types():
    assert isinstance(get_action_distribution(SPACES["discrete"], torch.zeros(2, 5)), CategoricalActionDistribution)
    assert isinstance(get_action_distribution(SPACES["box3"], torch.zeros(2, 6)), ContinuousActionDistribution)
    assert isinstance(get_action_distribution(SPACES["tuple"], torch.zeros(2, 11)), TupleActionDistribution)
    assert isinstance(get_action_distribution(SPACES["multidiscrete"], torch.zeros(2, 9)), TupleActionDistribution)
    for name, space in SPACES.items():
        head = make_distribution_head(space)
        assert isinstance(head, DistributionHead)
        assert head.num_params == calc_num_action_parameters(space), name
        assert head.num_actions == calc_num_actions(space), name
        assert len(list(head.parameters())) == 0, "heads hold no parameters"


# ------------------------------------------------------------------------------------------------
# log_prob / entropy / KL against torch.distributions
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_log_prob_entropy_kl_match_torch(name):
    space = SPACES[name]
    g = torch.Generator().manual_seed(123)
    params = random_params(space, generator=g)
    other = random_params(space, generator=g)
    actions = random_actions(space)
    head = make_distribution_head(space)

    close(head.log_prob(params, actions), ref_log_prob(space, params, actions))
    close(head.entropy(params), ref_entropy(space, params))
    close(head.kl(params, other), ref_kl(space, params, other))
    # KL(p || p) == 0 and KL >= 0
    close(head.kl(params, params), torch.zeros(B), atol=1e-5, rtol=0)
    assert (head.kl(params, other) >= -1e-6).all()

    # The eager Sample Factory objects delegate to the same math.
    dist = get_action_distribution(space, params)
    other_dist = get_action_distribution(space, other)
    close(dist.log_prob(actions), ref_log_prob(space, params, actions))
    close(dist.entropy(), ref_entropy(space, params))
    close(dist.kl_divergence(other_dist), ref_kl(space, params, other))
    assert dist.log_prob(actions).shape == (B,)
    assert dist.entropy().shape == (B,)
    assert dist.kl_divergence(other_dist).shape == (B,)


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_log_prob_accepts_float_actions(name):
    """Rollout buffers keep every action as float32; log_prob must accept that layout too."""
    space = SPACES[name]
    params = random_params(space, generator=torch.Generator().manual_seed(5))
    actions = random_actions(space)
    head = make_distribution_head(space)
    expected = head.log_prob(params, actions)
    close(head.log_prob(params, actions.float()), expected, atol=0, rtol=0)
    if actions.dim() == 1:  # Discrete / Box(1): [B, 1] as well as [B]
        close(head.log_prob(params, actions.float().unsqueeze(1)), expected, atol=0, rtol=0)


def test_gaussian_std_clamp():
    """log_std outside [log 1e-4, log 1e4] is clamped, as in Sample Factory."""
    space = spaces.Box(-1, 1, (2,))
    params = torch.tensor([[0.0, 0.0, -50.0, 50.0]])
    dist = get_action_distribution(space, params)
    close(dist.stddevs, torch.tensor([[1e-4, 1e4]]), rtol=1e-5, atol=0)
    ref = Independent(Normal(torch.zeros(1, 2), torch.tensor([[1e-4, 1e4]])), 1)
    close(dist.entropy(), ref.entropy(), rtol=1e-5, atol=1e-5)
    a = torch.tensor([[1e-4, 3.0]])
    close(dist.log_prob(a), ref.log_prob(a), rtol=1e-5, atol=1e-4)


def test_continuous_summaries():
    space = SPACES["box3"]
    params = random_params(space, generator=torch.Generator().manual_seed(2))
    dist = get_action_distribution(space, params)
    s = dist.summaries()
    means, log_std = params.chunk(2, dim=1)
    close(s["action_mean"], means.mean())
    close(s["action_mean_min"], means.min())
    close(s["action_mean_max"], means.max())
    close(s["action_log_std_mean"], log_std.mean())
    close(s["action_stddev_max"], log_std.exp().max())
    assert set(s) == {
        "action_mean",
        "action_mean_min",
        "action_mean_max",
        "action_log_std_mean",
        "action_log_std_min",
        "action_log_std_max",
        "action_stddev_mean",
        "action_stddev_min",
        "action_stddev_max",
    }
    assert get_action_distribution(SPACES["discrete"], torch.zeros(2, 5)).summaries() == {}


# ------------------------------------------------------------------------------------------------
# Action masks
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.bool, torch.float32])
@pytest.mark.parametrize("name", DISCRETE_NAMES)
def test_masked_log_prob_entropy_kl(name, mask_dtype):
    space = SPACES[name]
    g = torch.Generator().manual_seed(7)
    params = random_params(space, generator=g)
    other = random_params(space, generator=g)
    mask = random_mask(space).to(mask_dtype)
    actions = random_actions(space, mask=random_mask(space))
    head = make_distribution_head(space)

    close(head.log_prob(params, actions, mask), ref_log_prob(space, params, actions, mask))
    close(head.entropy(params, mask), ref_entropy(space, params, mask))
    close(head.kl(params, other, mask), ref_kl(space, params, other, mask))

    dist = get_action_distribution(space, params, mask)
    close(dist.log_prob(actions), ref_log_prob(space, params, actions, mask))
    close(dist.entropy(), ref_entropy(space, params, mask))
    close(dist.kl_divergence(get_action_distribution(space, other, mask)), ref_kl(space, params, other, mask))


def test_masked_categorical_probs_are_renormalized():
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]])
    mask = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 1]])
    dist = CategoricalActionDistribution(logits, mask)
    probs = dist.probs
    assert (probs[mask == 0] == 0).all()
    close(probs.sum(-1), torch.ones(2))
    e = math.exp
    close(probs[0], torch.tensor([e(1) / (e(1) + e(3)), 0.0, e(3) / (e(1) + e(3)), 0.0]))
    close(probs[1], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    # A single allowed action: deterministic, zero entropy, log-prob 0.
    close(dist.entropy()[1], torch.tensor(0.0), atol=1e-6, rtol=0)
    close(dist.log_prob(torch.tensor([2, 3]))[1], torch.tensor(0.0), atol=1e-6, rtol=0)
    assert torch.isfinite(dist.log_probs).all(), "masked log-probs stay finite (no NaN in gradients)"


@pytest.mark.parametrize("name", DISCRETE_NAMES)
def test_masked_entries_never_sampled(name):
    space = SPACES[name]
    batch = 4096
    torch.manual_seed(11)
    params = torch.zeros(batch, calc_num_action_parameters(space))
    mask = random_mask(space, batch=batch, seed=3)
    # Make the masked entries by far the most likely ones if the mask were ignored.
    p_off = 0
    m_off = 0
    for kind, size in _components(space):
        if kind == "cat":
            params[:, p_off : p_off + size] = torch.where(mask[:, m_off : m_off + size] == 0, 20.0, 0.0)
            p_off += size
            m_off += size
        else:
            p_off += 2 * size
    head = make_distribution_head(space)
    actions, log_probs = head.sample(params, mask)
    assert torch.isfinite(log_probs).all()
    assert (log_probs > -1e3).all(), "sampled actions are allowed ones"
    cols = _split_actions(space, actions)
    m_off = 0
    for (kind, size), a in zip(_components(space), cols):
        if kind != "cat":
            continue
        picked = mask[:, m_off : m_off + size].gather(1, a.unsqueeze(1))
        assert (picked == 1).all()
        m_off += size
    # argmax respects the mask too
    argmax_cols = _split_actions(space, head.argmax(params, mask))
    m_off = 0
    for (kind, size), a in zip(_components(space), argmax_cols):
        if kind != "cat":
            continue
        assert (mask[:, m_off : m_off + size].gather(1, a.unsqueeze(1)) == 1).all()
        m_off += size


# ------------------------------------------------------------------------------------------------
# Sampling statistics
# ------------------------------------------------------------------------------------------------


def _chi_square_ok(counts: np.ndarray, probs: np.ndarray) -> None:
    """Pearson chi-square vs expected counts with a loose threshold (df + 6 * sqrt(2 df) + 10)."""
    n = counts.sum()
    expected = probs * n
    support = expected > 0
    assert counts[~support].sum() == 0, "zero-probability outcomes were sampled"
    chi2 = (((counts[support] - expected[support]) ** 2) / expected[support]).sum()
    df = support.sum() - 1
    assert chi2 < df + 6 * math.sqrt(2 * max(df, 1)) + 10, f"chi2={chi2:.1f} df={df}"


@pytest.mark.parametrize("masked", [False, True])
def test_categorical_sample_frequencies(masked):
    torch.manual_seed(2024)
    n = 6
    num_samples = 100_000
    row_logits = torch.tensor([[0.3, -1.0, 2.0, 0.0, 1.2, -0.5]])
    row_mask = torch.tensor([[1, 1, 0, 1, 1, 0]]) if masked else None
    logits = row_logits.expand(num_samples, n)
    mask = row_mask.expand(num_samples, n) if masked else None
    head = make_distribution_head(spaces.Discrete(n))
    actions, log_probs = head.sample(logits, mask)
    assert actions.shape == (num_samples,) and actions.dtype == torch.int64
    ref = Categorical(logits=row_logits.masked_fill(row_mask == 0, float("-inf")) if masked else row_logits)
    probs = ref.probs[0].numpy().astype(np.float64)
    counts = np.bincount(actions.numpy(), minlength=n)
    _chi_square_ok(counts, probs)
    close(log_probs, ref.log_prob(actions))
    # the eager object samples from the same distribution
    dist = CategoricalActionDistribution(logits, mask)
    sampled = dist.sample()
    assert sampled.shape == (actions.shape[0], 1)  # Sample Factory's categorical sample() shape
    counts2 = np.bincount(sampled.squeeze(1).numpy(), minlength=n)
    _chi_square_ok(counts2, probs)


def test_multidiscrete_and_tuple_sample_frequencies():
    torch.manual_seed(77)
    num_samples = 60_000
    space = SPACES["tuple"]
    row = random_params(space, batch=1, generator=torch.Generator().manual_seed(9))
    params = row.expand(num_samples, -1)
    head = make_distribution_head(space)
    actions, log_probs = head.sample(params)
    cols = _split_actions(space, actions)
    refs = _ref_dists(space, row)
    _chi_square_ok(np.bincount(cols[0].numpy(), minlength=3), refs[0].probs[0].double().numpy())
    _chi_square_ok(np.bincount(cols[2].numpy(), minlength=4), refs[2].probs[0].double().numpy())
    gauss = cols[1]
    mean, std = refs[1].base_dist.loc[0], refs[1].base_dist.scale[0]
    se = std / math.sqrt(num_samples)
    assert ((gauss.mean(0) - mean).abs() < 6 * se).all()
    assert ((gauss.std(0) / std - 1).abs() < 0.03).all()
    close(log_probs, ref_log_prob(space, params, actions))

    md = SPACES["multidiscrete"]
    row = random_params(md, batch=1, generator=torch.Generator().manual_seed(10))
    actions, log_probs = make_distribution_head(md).sample(row.expand(num_samples, -1))
    refs = _ref_dists(md, row)
    for i, n in enumerate(md.nvec):
        _chi_square_ok(np.bincount(actions[:, i].numpy(), minlength=int(n)), refs[i].probs[0].double().numpy())
    close(log_probs, ref_log_prob(md, row.expand(num_samples, -1), actions))


@pytest.mark.parametrize("k", [1, 3])
def test_gaussian_sample_statistics(k):
    torch.manual_seed(5)
    num_samples = 100_000
    space = spaces.Box(-1, 1, (k,))
    means = torch.linspace(-2, 2, k)
    log_std = torch.linspace(-1.0, 0.5, k)
    params = torch.cat((means, log_std)).unsqueeze(0).expand(num_samples, -1)
    head = make_distribution_head(space)
    actions, log_probs = head.sample(params)
    a = actions.reshape(num_samples, k)
    std = log_std.exp()
    assert ((a.mean(0) - means).abs() < 6 * std / math.sqrt(num_samples)).all()
    assert ((a.std(0) / std - 1).abs() < 0.02).all()
    close(log_probs, Independent(Normal(means, std), 1).log_prob(a))
    # not clipped to the Box bounds (as in Sample Factory; envs clip)
    assert (a.abs() > 1).any()


# ------------------------------------------------------------------------------------------------
# Shapes, dtypes, argmax
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("name", SPACE_NAMES)
def test_action_shapes_and_dtypes(name, batch):
    space = SPACES[name]
    params = random_params(space, batch=batch, generator=torch.Generator().manual_seed(1))
    head = make_distribution_head(space)
    shape, dtype = expected_action_shape_dtype(space, batch)
    actions, log_probs = head.sample(params)
    assert tuple(actions.shape) == shape and actions.dtype == dtype
    assert log_probs.shape == (batch,) and log_probs.dtype == torch.float32
    am = head.argmax(params)
    assert tuple(am.shape) == shape and am.dtype == dtype
    assert head.entropy(params).shape == (batch,)
    dist = get_action_distribution(space, params)
    s = dist.sample()
    if isinstance(space, spaces.Discrete):
        assert tuple(s.shape) == (batch, 1) and s.dtype == dtype  # Sample Factory returns [B, 1] here
        s = s.squeeze(1)
    assert tuple(s.shape) == shape and s.dtype == dtype
    a2, lp2 = sample_actions_log_probs(dist)
    assert tuple(a2.shape) == shape and lp2.shape == (batch,)
    close(lp2, dist.log_prob(a2))
    assert tuple(argmax_actions(dist).shape) == shape
    # sampled actions lie in the space (for discrete components; Box samples are not clipped)
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        for row in s.reshape(batch, -1).numpy():
            assert space.contains(row[0] if isinstance(space, spaces.Discrete) else row.astype(space.dtype))


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_argmax(name):
    space = SPACES[name]
    params = random_params(space, generator=torch.Generator().manual_seed(4))
    head = make_distribution_head(space)
    am = head.argmax(params)
    cols = _split_actions(space, am)
    for d, a, (kind, _) in zip(_ref_dists(space, params), cols, _components(space)):
        if kind == "cat":
            assert torch.equal(a, d.probs.argmax(-1))
        else:
            close(a, d.base_dist.loc, atol=0, rtol=0)
    # the argmax is the mode: its log-prob is at least that of any sample
    torch.manual_seed(0)
    for _ in range(5):
        sampled, _ = head.sample(params)
        assert (head.log_prob(params, am) >= head.log_prob(params, sampled) - 1e-5).all()
    assert torch.equal(argmax_actions(get_action_distribution(space, params)), am)


# ------------------------------------------------------------------------------------------------
# Symmetric KL with a uniform prior
# ------------------------------------------------------------------------------------------------


def _ref_symmetric_kl_categorical(logits: Tensor, mask: Optional[Tensor]) -> Tensor:
    logits = logits.double()
    if mask is None:
        mask = torch.ones_like(logits)
    allowed = mask != 0
    log_p = torch.log_softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)
    result = []
    for i in range(logits.shape[0]):
        lp = log_p[i][allowed[i]]
        p = lp.exp()
        n = allowed[i].sum().double()
        log_u = -torch.log(n)
        kl_pu = (p * (lp - log_u)).sum()
        kl_up = ((1.0 / n) * (log_u - lp)).sum()
        result.append(0.5 * (kl_pu + kl_up))
    return torch.stack(result)


def _ref_symmetric_kl(space, params, mask=None) -> Tensor:
    result = torch.zeros(params.shape[0], dtype=torch.float64)
    p_off = 0
    m_off = 0
    for kind, size in _components(space):
        assert kind == "cat"
        m = None if mask is None else mask[:, m_off : m_off + size]
        result += _ref_symmetric_kl_categorical(params[:, p_off : p_off + size], m)
        p_off += size
        m_off += size
    return result


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name", ["discrete", "multidiscrete"])
def test_symmetric_kl_with_uniform_prior(name, masked):
    space = SPACES[name]
    params = random_params(space, generator=torch.Generator().manual_seed(8))
    mask = random_mask(space, seed=4) if masked else None
    expected = _ref_symmetric_kl(space, params, mask)
    close(make_distribution_head(space).symmetric_kl_with_uniform_prior(params, mask), expected)
    close(get_action_distribution(space, params, mask).symmetric_kl_with_uniform_prior(), expected)
    # uniform logits over the allowed actions -> 0
    zeros = torch.zeros_like(params)
    close(make_distribution_head(space).symmetric_kl_with_uniform_prior(zeros, mask), torch.zeros(B), atol=1e-5, rtol=0)


def test_symmetric_kl_discrete_formula():
    """Direct check of 0.5 * (KL(pi || U) + KL(U || pi)) for one row."""
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    p = torch.softmax(logits[0].double(), 0)
    u = torch.full((3,), 1 / 3, dtype=torch.float64)
    expected = 0.5 * ((p * (p / u).log()).sum() + (u * (u / p).log()).sum())
    close(CategoricalActionDistribution(logits).symmetric_kl_with_uniform_prior()[0], expected)
    # mask the middle action: uniform over {0, 2}
    mask = torch.tensor([[1, 0, 1]])
    p = torch.softmax(torch.tensor([0.0, 2.0], dtype=torch.float64), 0)
    u = torch.full((2,), 0.5, dtype=torch.float64)
    expected = 0.5 * ((p * (p / u).log()).sum() + (u * (u / p).log()).sum())
    close(CategoricalActionDistribution(logits, mask).symmetric_kl_with_uniform_prior()[0], expected)


@pytest.mark.parametrize("name", ["box1", "box3", "tuple"])
def test_symmetric_kl_continuous_raises(name):
    space = SPACES[name]
    params = random_params(space)
    with pytest.raises(RuntimeError, match="discrete"):
        make_distribution_head(space).symmetric_kl_with_uniform_prior(params)
    with pytest.raises(RuntimeError, match="discrete"):
        get_action_distribution(space, params).symmetric_kl_with_uniform_prior()


# ------------------------------------------------------------------------------------------------
# TorchScript
# ------------------------------------------------------------------------------------------------


class HeadCaller(nn.Module):
    """Calls every operation of a distribution head (so that all of them get compiled)."""

    def __init__(self, head: DistributionHead):
        super().__init__()
        self.head = head

    def forward(self, params: Tensor, other: Tensor, actions: Tensor, mask: Optional[Tensor]) -> Dict[str, Tensor]:
        sampled, sampled_log_probs = self.head.sample(params, mask)
        return {
            "sampled": sampled,
            "sampled_log_probs": sampled_log_probs,
            "log_prob": self.head.log_prob(params, actions, mask),
            "entropy": self.head.entropy(params, mask),
            "kl": self.head.kl(params, other, mask),
            "argmax": self.head.argmax(params, mask),
        }

    @torch.jit.export
    def symmetric_kl(self, params: Tensor, mask: Optional[Tensor]) -> Tensor:
        return self.head.symmetric_kl_with_uniform_prior(params, mask)


@pytest.mark.parametrize(
    "name,masked", [(n, False) for n in SPACE_NAMES] + [(n, True) for n in DISCRETE_NAMES]
)
def test_heads_compile_with_torchscript(name, masked):
    space = SPACES[name]
    eager = HeadCaller(make_distribution_head(space))
    scripted = torch.jit.script(eager)
    g = torch.Generator().manual_seed(21)
    params = random_params(space, generator=g)
    other = random_params(space, generator=g)
    mask = random_mask(space) if masked else None
    actions = random_actions(space, mask=mask)

    torch.manual_seed(1234)
    expected = eager(params, other, actions, mask)
    torch.manual_seed(1234)
    got = scripted(params, other, actions, mask)
    assert set(got) == set(expected)
    for k in expected:
        assert got[k].dtype == expected[k].dtype, k
        assert got[k].shape == expected[k].shape, k
        torch.testing.assert_close(got[k], expected[k], rtol=1e-6, atol=1e-6, msg=k)
    assert torch.equal(got["sampled"], expected["sampled"])

    if name in ("discrete", "multidiscrete"):
        torch.testing.assert_close(scripted.symmetric_kl(params, mask), eager.symmetric_kl(params, mask))
    else:
        # TorchScript re-raises as torch.jit.Error carrying the original message.
        with pytest.raises((RuntimeError, torch.jit.Error), match="defined only for discrete actions"):
            scripted.symmetric_kl(params, mask)


def test_scripted_head_random_stream_matches_eager_over_several_calls():
    """Two consecutive scripted sample calls consume the global RNG exactly like eager ones."""
    space = SPACES["tuple"]
    eager = HeadCaller(make_distribution_head(space))
    scripted = torch.jit.script(eager)
    params = random_params(space, generator=torch.Generator().manual_seed(3))
    actions = random_actions(space)
    torch.manual_seed(99)
    e1 = eager(params, params, actions, None)["sampled"]
    e2 = eager(params, params, actions, None)["sampled"]
    torch.manual_seed(99)
    s1 = scripted(params, params, actions, None)["sampled"]
    s2 = scripted(params, params, actions, None)["sampled"]
    assert torch.equal(e1, s1) and torch.equal(e2, s2)
    assert not torch.equal(e1, e2)


# ------------------------------------------------------------------------------------------------
# log_prob action shapes, as Sample Factory's distributions accept them
# ------------------------------------------------------------------------------------------------

SF_EXPECTED_PROBS = [0.09003057317038046, 0.24472847105479764, 0.6652409557748219]  # softmax([0, 1, 2])


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "scripted_head"])
def test_categorical_log_prob_of_k_actions_per_row(scripted):
    """Sample Factory: gather(log_probs, -1, actions).view(-1), so [B, k] actions give [B * k] log-probs."""
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    dist = get_action_distribution(spaces.Discrete(3), logits)
    close(dist.log_prob(torch.tensor([[0, 1, 2]])).exp(), torch.tensor(SF_EXPECTED_PROBS))  # SF's own test
    assert dist.log_prob(torch.ones(1, 1)).shape == (1,)
    head = make_distribution_head(spaces.Discrete(3))
    if scripted:
        head = torch.jit.script(head)
    g = torch.Generator().manual_seed(0)
    params = torch.randn(4, 3, generator=g)
    actions = torch.randint(0, 3, (4, 2), generator=g)
    lp = head.log_prob(params, actions)
    assert lp.shape == (8,)
    log_p = torch.log_softmax(params, -1)
    expected = torch.stack([log_p[b, actions[b, j]] for b in range(4) for j in range(2)])
    close(lp, expected)  # row by row: [b0a0, b0a1, b1a0, ...]
    # [B, 1] and [B] (float too) give [B]
    one = actions[:, :1]
    close(head.log_prob(params, one), log_p.gather(1, one).squeeze(1))
    close(head.log_prob(params, one.squeeze(1).float()), log_p.gather(1, one).squeeze(1))
    # more leading dims: logits [T, B, n] with actions [T, B, 1] -> [T * B]
    params3 = torch.randn(2, 4, 3, generator=g)
    actions3 = torch.randint(0, 3, (2, 4, 1), generator=g)
    close(head.log_prob(params3, actions3), torch.log_softmax(params3, -1).gather(-1, actions3).reshape(-1))


def test_categorical_log_prob_of_k_actions_with_mask():
    params = torch.zeros(2, 3)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    lp = get_action_distribution(spaces.Discrete(3), params, mask).log_prob(torch.tensor([[0, 1], [1, 2]]))
    close(lp.exp(), torch.tensor([0.5, 0.5, 1 / 3, 1 / 3]))


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "scripted_head"])
def test_gaussian_log_prob_shapes_match_torch_distributions(scripted):
    space = spaces.Box(-1, 1, (3,))
    head = make_distribution_head(space)
    if scripted:
        # A head has no forward: scripting it alone compiles none of its methods (it passed only when an earlier
        # test in the same process had compiled the class), so script it inside the module that calls them all.
        head = torch.jit.script(HeadCaller(head)).head
    g = torch.Generator().manual_seed(1)
    params = torch.randn(5, 6, generator=g)
    means, log_std = params.chunk(2, dim=1)
    ref = Independent(Normal(means, log_std.exp()), 1)
    for shape in [(5, 3), (1, 3), (2, 5, 3)]:  # [B, k], broadcast over the batch, more leading dims
        actions = torch.randn(shape, generator=g)
        expected = ref.log_prob(actions)
        got = head.log_prob(params, actions)
        assert got.shape == expected.shape, shape
        close(got, expected)
    dist = get_action_distribution(space, params)
    assert dist.log_prob(torch.randn(5, 3)).shape == (5,)


def test_tuple_log_prob_sample_factory_cases():
    """Sample Factory's tuple sanity tests: [B, num_actions] actions, probabilities multiply."""
    action_space = spaces.Discrete(3)
    tuple_space = spaces.Tuple([action_space, action_space])
    dist = get_action_distribution(tuple_space, torch.tensor([[0.0, 1.0, 2.0, 0.0, 1.0, 2.0]]))
    for a1 in range(3):
        for a2 in range(3):
            p = dist.log_prob(torch.tensor([[a1, a2]])).exp()
            assert p.shape == (1,)
            assert p.item() == pytest.approx(SF_EXPECTED_PROBS[a1] * SF_EXPECTED_PROBS[a2], abs=1e-6)
    three = spaces.Tuple([spaces.Discrete(2)] * 3)
    simple = get_action_distribution(spaces.Discrete(2), torch.zeros(1, 2))
    tup = get_action_distribution(three, torch.zeros(1, 6))
    close(tup.log_prob(torch.ones(1, 3)), simple.log_prob(torch.ones(1, 1)) * 3)
    close(tup.log_prob(torch.ones(1, 3, 1)), simple.log_prob(torch.ones(1, 1)) * 3)  # [B, n, 1] too
    close(tup.entropy(), simple.entropy() * 3)


@pytest.mark.parametrize("sizes", [[1, 1], [2, 1], [1, 2], [2, 3]])
@pytest.mark.parametrize("kinds", [["d", "d"], ["d", "b"], ["b", "b"]])
def test_tuple_sample_log_prob_shapes(kinds, sizes):
    """Sample Factory's test_tuple_action_distribution: prime batch, every Discrete/Box combination."""
    batch = 31
    parts = [spaces.Discrete(n) if k == "d" else spaces.Box(-1, 1, (n,), dtype=np.float32) for k, n in zip(kinds, sizes)]
    space = spaces.Tuple(parts)
    num_actions = sum(1 if k == "d" else n for k, n in zip(kinds, sizes))
    dist = get_action_distribution(space, torch.randn(batch, calc_num_action_parameters(space)))
    actions = dist.sample()
    assert actions.shape == (batch, num_actions)
    assert dist.log_prob(actions).shape == (batch,)
    assert dist.entropy().shape == (batch,)
    actions, lp = dist.sample_actions_log_probs()
    assert actions.shape == (batch, num_actions) and lp.shape == (batch,)
    close(lp, dist.log_prob(actions))


def test_tuple_distribution_has_sample_factorys_attributes():
    space = SPACES["tuple"]  # Discrete(3), Box(2), Discrete(4)
    params = random_params(space, batch=5, generator=torch.Generator().manual_seed(8))
    mask = random_mask(space, batch=5)
    dist = get_action_distribution(space, params, mask)
    assert dist.logit_lengths == [3, 4, 4] and dist.action_lengths == [1, 2, 1]
    assert [t.shape[1] for t in dist.split_logits] == [3, 4, 4]
    subs = dist.distributions
    assert [type(d) for d in subs] == [CategoricalActionDistribution, ContinuousActionDistribution, CategoricalActionDistribution]
    actions = random_actions(space, batch=5, mask=mask)
    parts = torch.split(actions, dist.action_lengths, dim=1)
    close(dist.log_prob(actions), sum(d.log_prob(a) for d, a in zip(subs, parts)))
    close(dist.entropy(), sum(d.entropy() for d in subs))
    md = get_action_distribution(SPACES["multidiscrete"], random_params(SPACES["multidiscrete"], batch=5))
    assert md.logit_lengths == [3, 4, 2] and len(md.distributions) == 3


def test_width_of_raw_logits_is_checked():
    with pytest.raises(ValueError, match="5 values per row"):
        get_action_distribution(spaces.Discrete(5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="calc_num_action_parameters"):
        get_action_distribution(spaces.Box(-1, 1, (2,)), torch.zeros(2, 2))


def test_categorical_sample_gumbel_and_dbg_print(caplog):
    import logging

    logits = torch.tensor([[0.0, 50.0, 0.0]] * 6)
    dist = get_action_distribution(spaces.Discrete(3), logits)
    sample = dist.sample_gumbel()
    assert sample.shape == (6,) and (sample == 1).all(), "[B], no trailing dim, as in Sample Factory"
    with caplog.at_level(logging.DEBUG, logger="rl"):
        dist.dbg_print()
        get_action_distribution(SPACES["tuple"], torch.zeros(2, 11)).dbg_print()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("entropy=") and "max_logit=50.000" in messages[0]
    assert len(messages) == 3, "the tuple logs its two categorical parts"


def test_continuous_log_std_is_as_parameterized():
    params = torch.tensor([[0.0, 0.5, -20.0, 1.0]])  # log_std -20 is clamped in the stddevs only
    dist = get_action_distribution(spaces.Box(-1, 1, (2,)), params)
    close(dist.log_std, torch.tensor([[-20.0, 1.0]]))
    close(dist.stddevs, torch.tensor([[1e-4, math.e]]), rtol=1e-5, atol=0)
    s = dist.summaries()
    close(s["action_log_std_min"], torch.tensor(-20.0))
    close(s["action_stddev_min"], torch.tensor(1e-4), rtol=1e-5, atol=0)
