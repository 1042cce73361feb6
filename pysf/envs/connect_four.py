"""Connect Four in Python: the reference of the native ``ConnectFour-v0`` (csrc/envs/board_games.h states the rules),
a two-agent env with Sample Factory's multi-agent contract, and the opponents its self-play is measured against.

The native env trains without Python in the loop (each game is two env slots, one per seat); this module is what
the tests hold it to, move for move, and what evaluations play against.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np

ROWS, COLUMNS = 6, 7
CELLS = ROWS * COLUMNS
OBSERVATION_SIZE = 2 * CELLS + 1
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


class ConnectFourGame:
    """One game: ``cells`` row-major from the bottom row (0 empty, 1 seat 0, 2 seat 1), the seat to move, the
    number of stones."""

    def __init__(self, to_move: int = 0):
        self.cells = [0] * CELLS
        self.to_move = to_move
        self.moves = 0

    def state(self) -> List[float]:
        """The native env's ``get_state`` layout: the 42 cells, the seat to move, the number of stones."""
        return [float(c) for c in self.cells] + [float(self.to_move), float(self.moves)]

    def legal_columns(self) -> List[int]:
        return [c for c in range(COLUMNS) if self.cells[(ROWS - 1) * COLUMNS + c] == 0]

    def _drop_row(self, column: int) -> Optional[int]:
        for row in range(ROWS):
            if self.cells[row * COLUMNS + column] == 0:
                return row
        return None

    def _makes_four(self, row: int, column: int) -> bool:
        stone = self.cells[row * COLUMNS + column]
        for dr, dc in _DIRECTIONS:
            count = 1
            for sign in (1, -1):
                r, c = row + sign * dr, column + sign * dc
                while 0 <= r < ROWS and 0 <= c < COLUMNS and self.cells[r * COLUMNS + c] == stone:
                    count += 1
                    r, c = r + sign * dr, c + sign * dc
            if count >= 4:
                return True
        return False

    def play(self, column: int) -> Tuple[bool, float]:
        """The mover drops a stone into ``column``: ``(game over, the mover's reward)``; the other seat gets its
        negative. A full column loses; the turn passes when the game goes on."""
        row = self._drop_row(column)
        if row is None:
            return True, -1.0
        self.cells[row * COLUMNS + column] = self.to_move + 1
        self.moves += 1
        if self._makes_four(row, column):
            return True, 1.0
        if self.moves == CELLS:
            return True, 0.0
        self.to_move = 1 - self.to_move
        return False, 0.0

    def observation(self, seat: int) -> np.ndarray:
        """What ``seat`` observes: its stones, the other seat's, and 1 when it is to move (float32, 85 values)."""
        cells = np.asarray(self.cells)
        own = (cells == seat + 1).astype(np.float32)
        other = ((cells != 0) & (cells != seat + 1)).astype(np.float32)
        return np.concatenate([own, other, np.array([1.0 if self.to_move == seat else 0.0], dtype=np.float32)])

    def winning_column(self, seat: int) -> Optional[int]:
        """A column where ``seat``'s stone would make four now, if any."""
        stone = seat + 1
        for column in self.legal_columns():
            row = self._drop_row(column)
            self.cells[row * COLUMNS + column] = stone
            wins = self._makes_four(row, column)
            self.cells[row * COLUMNS + column] = 0
            if wins:
                return column
        return None


def random_move(game: ConnectFourGame, rng: random.Random) -> int:
    """A uniformly random legal column."""
    return rng.choice(game.legal_columns())


def heuristic_move(game: ConnectFourGame, rng: random.Random) -> int:
    """A simple fixed opponent: win where it can, else block the other seat's four, else a random legal column."""
    for seat in (game.to_move, 1 - game.to_move):
        column = game.winning_column(seat)
        if column is not None:
            return column
    return random_move(game, rng)


class ConnectFourEnv(gym.Env):
    """Connect Four as a two-agent env (Sample Factory's multi-agent contract: one observation, reward, flag and
    info per agent; it resets itself when a game ends). Agent ``a`` is seat ``a``; the first mover is drawn per
    game. Rewards and observations are the native ``ConnectFour-v0``'s."""

    metadata: Dict[str, Any] = {"render_modes": []}

    def __init__(self, render_mode: Optional[str] = None) -> None:
        self.render_mode = render_mode  # nothing to render: gymnasium passes it to every env
        self.num_agents = 2
        self.is_multiagent = True
        self.observation_space = gym.spaces.Box(0.0, 1.0, (OBSERVATION_SIZE,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(COLUMNS)
        self.game = ConnectFourGame()

    def _observations(self) -> List[np.ndarray]:
        return [self.game.observation(seat) for seat in range(2)]

    def _new_game(self) -> None:
        self.game = ConnectFourGame(int(self.np_random.integers(2)))

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> Tuple[List[np.ndarray], List[Dict]]:
        super().reset(seed=seed)
        self._new_game()
        return self._observations(), [{}, {}]

    def step(self, actions: Sequence[int]) -> Tuple[List[np.ndarray], List[float], List[bool], List[bool], List[Dict]]:
        mover = self.game.to_move
        over, reward = self.game.play(int(actions[mover]))
        rewards = [0.0, 0.0]
        rewards[mover], rewards[1 - mover] = reward, -reward
        if over:
            self._new_game()
        return self._observations(), rewards, [over, over], [False, False], [{}, {}]


def match_score(choose: Callable[[ConnectFourGame, int], int], opponent: Callable[[ConnectFourGame, random.Random], int],
                games: int, seed: int = 0) -> Dict[str, float]:
    """``choose(game, seat)``'s results against ``opponent(game, rng)`` over ``games`` games, the first move
    alternating between them: the fractions of ``win``, ``draw`` and ``loss`` (an illegal column loses)."""
    rng = random.Random(seed)
    results = {"win": 0, "draw": 0, "loss": 0}
    for index in range(games):
        game = ConnectFourGame(to_move=index % 2)
        seat = 0  # the chooser's seat; it moves first in every other game
        while True:
            mover = game.to_move
            column = choose(game, mover) if mover == seat else opponent(game, rng)
            over, reward = game.play(column)
            if over:
                mover_won = reward > 0
                if reward == 0:
                    results["draw"] += 1
                elif mover_won == (mover == seat):
                    results["win"] += 1
                else:
                    results["loss"] += 1
                break
    return {key: value / games for key, value in results.items()}
