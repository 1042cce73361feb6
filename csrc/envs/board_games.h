// The native two-player board games, for self-play. Each factory returns a block whose env slots come in
// pairs: slots 2g and 2g + 1 are the two seats of game g (EnvSpec::num_agents = 2), each its own trajectory row
// (an agent of the game), so that the sampler's agent -> policy mapping can put two policies against each other.
// Both seats act at every step; only the action of the seat to move counts. registry.cpp lists the factories.
#pragma once

#include <cstdint>
#include <memory>

#include "envs/vector_env.h"

namespace pysf::envs {

/// ConnectFour-v0: drop stones into a 6 x 7 board; four of one's own in a row, column or diagonal wins.
///
/// Per game: the board, the seat to move (drawn with equal odds from the game's stream, the stream of its
/// seat-0 slot, at every reset) and the number of moves. A step applies the mover's column (action 0-6):
///   - into a full column: the mover loses (-1, the other seat +1), the game ends;
///   - a four of the mover's: +1 to the mover, -1 to the other seat, the game ends;
///   - the 42nd stone without a four: a draw (0, 0), the game ends;
///   - else 0 to both, and the other seat moves next.
/// Both seats' episodes end together (terminated; never truncated) and the game restarts at once.
/// Observation of a seat, 85 float32 in [0, 1]: its own stones (42, row-major from the bottom row), the other
/// seat's stones (42), and 1 when it is to move. State of a slot (get_state / set_state, shared by the two seats of
/// its game): the 42 cells (0 empty, 1 seat 0, 2 seat 1), the seat to move, the number of moves.
/// The Python reference, bit for bit: pysf/envs/connect_four.py. `num_envs` must be even
/// (std::invalid_argument otherwise). A decorrelation warm-up of the seat-0 slot plays random moves for both
/// seats; that of the seat-1 slot does nothing.
[[nodiscard]] std::unique_ptr<VectorEnv> make_connect_four_env(int num_envs, std::uint64_t seed);

}  // namespace pysf::envs
