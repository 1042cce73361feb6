"""pysf.algo.utils.spaces.Discretized: a Discrete space standing for evenly spaced continuous values."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pysf.algo.utils.action_distributions import (
    CategoricalActionDistribution,
    calc_num_action_parameters,
    calc_num_actions,
    get_action_distribution,
)
from pysf.algo.utils.spaces import Discretized as DiscretizedFromPackage
from pysf.algo.utils.spaces.discretized import Discretized


def test_is_a_discrete_space():
    space = Discretized(11, min_action=-10.0, max_action=10.0)
    assert DiscretizedFromPackage is Discretized
    assert isinstance(space, spaces.Discrete)
    assert space.n == 11 and space.start == 0
    assert (space.min_action, space.max_action) == (-10.0, 10.0)
    for _ in range(50):
        a = space.sample()
        assert 0 <= a < 11 and space.contains(a)
    assert "Discretized(11" in repr(space)


@pytest.mark.parametrize("n,low,high", [(11, -10.0, 10.0), (21, -12.5, 12.5), (2, 0.0, 1.0), (5, 1.0, -1.0)])
def test_to_continuous(n, low, high):
    space = Discretized(n, low, high)
    expected = np.linspace(low, high, n)
    for action in range(n):
        assert space.to_continuous(action) == pytest.approx(expected[action])
    # elementwise for arrays and tensors of actions
    np.testing.assert_allclose(space.to_continuous(np.arange(n)), expected)
    torch.testing.assert_close(space.to_continuous(torch.arange(n)).double(), torch.tensor(expected))


def test_examples_from_sample_factory():
    assert Discretized(11, -10.0, 10.0).to_continuous(3) == pytest.approx(-4.0)
    assert Discretized(21, -12.5, 12.5).to_continuous(10) == pytest.approx(0.0)


def test_single_action_has_no_step():
    with pytest.raises(ValueError, match="n >= 2"):
        Discretized(1, -1.0, 1.0).to_continuous(0)


def test_pickles():
    space = Discretized(7, -1.5, 1.5)
    restored = pickle.loads(pickle.dumps(space))
    assert isinstance(restored, Discretized) and restored.n == 7
    assert (restored.min_action, restored.max_action) == (-1.5, 1.5)
    assert restored.to_continuous(6) == pytest.approx(1.5)


def test_policy_sees_a_categorical():
    space = Discretized(11, -10.0, 10.0)
    assert calc_num_actions(space) == 1 and calc_num_action_parameters(space) == 11
    dist = get_action_distribution(space, torch.zeros(4, 11))
    assert isinstance(dist, CategoricalActionDistribution)
    tuple_space = spaces.Tuple((spaces.Discrete(3), Discretized(11, -10.0, 10.0)))
    assert calc_num_actions(tuple_space) == 2 and calc_num_action_parameters(tuple_space) == 14


def test_env_workers_decode_it_as_discrete():
    """The gymnasium env workers turn float32 action rows into env.step arguments (Discrete -> int)."""
    from pysf.algo.sampling.rollout_worker import ActionDecoder

    space = Discretized(11, -10.0, 10.0)
    rows = np.array([[0.0], [3.0], [10.0]], dtype=np.float32)
    for numpy_scalars in (False, True):
        decoded = ActionDecoder(space).rows_decoder(numpy_scalars=numpy_scalars)(rows)
        assert [int(a) for a in decoded] == [0, 3, 10]
        assert all(space.contains(a) for a in decoded)
    assert [space.to_continuous(a) for a in ActionDecoder(space).rows_decoder()(rows)] == [-10.0, -4.0, 10.0]
    tuple_space = spaces.Tuple((spaces.Discrete(3), Discretized(5, -1.0, 1.0)))
    action = ActionDecoder(tuple_space).one(np.array([2.0, 4.0], dtype=np.float32))
    assert action == (2, 4) and tuple_space.contains(action)
