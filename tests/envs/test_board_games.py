"""The native two-player board games against their Python reference, move for move (pysf/envs/connect_four.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from pysf import _C
from pysf.envs.connect_four import CELLS, OBSERVATION_SIZE, ConnectFourEnv, ConnectFourGame, heuristic_move, match_score, random_move


def game_from_native_state(state) -> ConnectFourGame:
    game = ConnectFourGame(int(state[CELLS]))
    game.cells = [int(c) for c in state[:CELLS]]
    game.moves = int(state[CELLS + 1])
    return game


def test_connect_four_matches_the_reference_move_for_move():
    """Random columns for every seat (full columns included): rewards, flags, episode figures, observations and
    boards agree with the reference at every step; a finished game restarts with the native env's draw of the
    first mover, which the reference then takes over."""
    games = 3
    native = _C.NativeVectorEnv("ConnectFour-v0", 2 * games, 7)
    assert tuple(native.spec["observation_space"]["shape"]) == (OBSERVATION_SIZE,)
    obs = native.reset().numpy()
    reference = [game_from_native_state(native.get_state(2 * g)) for g in range(games)]
    rng = np.random.default_rng(0)
    finished = {"wins": 0, "draws": 0, "illegal": 0}
    first_movers = set()
    for _ in range(3000):
        actions = rng.integers(0, 7, 2 * games)
        obs, rewards, terminated, truncated, episode_return, episode_length = (t.numpy() for t in
                                                                              native.step(torch.tensor(actions)))
        assert not truncated.any()
        for g, game in enumerate(reference):
            mover = game.to_move
            full_before = game.legal_columns()
            column = int(actions[2 * g + mover])
            over, reward = game.play(column)
            assert rewards[2 * g + mover] == reward and rewards[2 * g + 1 - mover] == -reward
            assert terminated[2 * g] == terminated[2 * g + 1] == over
            if over:
                finished["illegal" if column not in full_before else "wins" if reward else "draws"] += 1
                assert episode_return[2 * g + mover] == reward and episode_length[2 * g] == episode_length[2 * g + 1]
                game = reference[g] = game_from_native_state(native.get_state(2 * g))
                assert game.moves == 0 and not any(game.cells)
                first_movers.add(game.to_move)
            assert native.get_state(2 * g) == native.get_state(2 * g + 1) == game.state()
            for seat in (0, 1):
                assert np.array_equal(obs[2 * g + seat], game.observation(seat))
    assert finished["wins"] > 50 and finished["illegal"] > 10 and first_movers == {0, 1}


def test_the_two_agent_env_plays_the_same_rules_and_resets_itself():
    env = ConnectFourEnv()
    obs, _ = env.reset(seed=3)
    assert len(obs) == 2 and obs[0].shape == (OBSERVATION_SIZE,) and obs[0][-1] + obs[1][-1] == 1.0
    mover = env.game.to_move
    column = heuristic_move(env.game, random.Random(0))
    for _ in range(3):  # the mover stacks a column: no four yet
        obs, rewards, terminated, _, _ = env.step([column, column])
        assert rewards == [0.0, 0.0] and terminated == [False, False]
        env.step([(column + 1) % 7] * 2)
    obs, rewards, terminated, _, _ = env.step([column, column])  # the fourth stone on the column wins
    assert rewards[mover] == 1.0 and rewards[1 - mover] == -1.0 and terminated == [True, True]
    assert not obs[0][:2 * CELLS].any()  # the next game's first observation


def test_the_heuristic_wins_where_it_can_and_blocks_where_it_must():
    game = ConnectFourGame(to_move=0)
    for column in (0, 6, 1, 6, 2):  # seat 0 has 0-1-2 on the bottom row, seat 1 two stones on column 6
        game.play(column)
    assert game.to_move == 1 and heuristic_move(game, random.Random(0)) == 3  # seat 1 blocks
    game.play(5)
    assert heuristic_move(game, random.Random(0)) == 3  # seat 0 wins


def test_connect_four_needs_an_even_number_of_slots_and_valid_states():
    with pytest.raises(ValueError, match="num_envs must be even"):
        _C.NativeVectorEnv("ConnectFour-v0", 3, 0)
    native = _C.NativeVectorEnv("ConnectFour-v0", 2, 0)
    native.reset()
    with pytest.raises(ValueError, match="must be 0, 1 or 2"):
        native.set_state(0, [3.0] + [0.0] * (CELLS + 1), 0)


def test_a_game_is_one_env_of_two_agents_for_the_trainer():
    """EnvSpec::num_agents: the sampler maps a game's two seats as the two agents of one env."""
    from pysf.algo.utils.env_info import obtain_env_info_in_a_separate_process
    from pysf.train import parse_train_args

    assert _C.native_env_spec("ConnectFour-v0")["num_agents"] == 2
    assert _C.native_env_spec("CartPole-v1")["num_agents"] == 1
    info = obtain_env_info_in_a_separate_process(parse_train_args(["--env=ConnectFour-v0", "--experiment=info"]))
    assert info.native and info.num_agents == 2 and info.is_multiagent


def test_match_score_counts_wins_draws_and_losses_of_the_chooser():
    rng = random.Random(1)
    heuristic = match_score(lambda game, seat: heuristic_move(game, rng), random_move, games=200)
    assert sum(heuristic.values()) == pytest.approx(1.0) and heuristic["win"] > 0.8
    # both stack column 0 in turn (no four: the colours alternate); the 7th stone, the first mover's, is illegal
    illegal = match_score(lambda game, seat: 0, lambda game, rng: 0, games=50)
    assert illegal == {"win": 0.5, "draw": 0.0, "loss": 0.5}
