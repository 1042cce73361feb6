// ConnectFour-v0 (what it computes: board_games.h). The rules are written once more, in Python, in
// pysf/envs/connect_four.py; tests/envs/test_board_games.py holds the two to the same trajectories.
#include "envs/board_games.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "envs/rng.h"

namespace pysf::envs {

namespace {

constexpr int kRows = 6;
constexpr int kColumns = 7;
constexpr int kCells = kRows * kColumns;
constexpr int kObservationSize = 2 * kCells + 1;
constexpr int kStateSize = kCells + 2;

struct MoveResult {
  bool game_over = false;
  double mover_reward = 0.0;  // the other seat gets its negative
};

class ConnectFourEnv final : public VectorEnv {
 public:
  ConnectFourEnv(int num_envs, std::uint64_t seed)
      : VectorEnv(make_spec(), checked_slots(num_envs)),
        games_(num_envs / 2),
        cells_(static_cast<std::size_t>(games_ * kCells), 0),
        to_move_(static_cast<std::size_t>(games_), 0),
        moves_(static_cast<std::size_t>(games_), 0),
        elapsed_(static_cast<std::size_t>(games_), 0),
        rngs_(static_cast<std::size_t>(num_envs)),
        returns_(static_cast<std::size_t>(num_envs), 0.0) {
    VectorEnv::seed(seed);
  }

  [[nodiscard]] int state_size() const noexcept override { return kStateSize; }

 private:
  static EnvSpec make_spec() {
    EnvSpec spec;
    spec.name = "ConnectFour-v0";
    spec.observation_space = Space::box({kObservationSize}, std::vector<float>(kObservationSize, 0.0F),
                                        std::vector<float>(kObservationSize, 1.0F));
    spec.action_space = Space::discrete(kColumns);
    spec.max_episode_steps = kCells;  // a game never lasts longer (each step drops a stone or ends it)
    spec.num_agents = 2;              // the seats
    return spec;
  }

  static int checked_slots(int num_envs) {
    if (num_envs < 2 || num_envs % 2 != 0) {
      throw std::invalid_argument("ConnectFour-v0 pairs its env slots into games (two seats each): num_envs must be "
                                  "even, got " + std::to_string(num_envs));
    }
    return num_envs;
  }

  [[nodiscard]] std::uint8_t& cell(int game, int row, int column) {
    return cells_[static_cast<std::size_t>(game * kCells + row * kColumns + column)];
  }
  [[nodiscard]] std::uint8_t cell(int game, int row, int column) const {
    return cells_[static_cast<std::size_t>(game * kCells + row * kColumns + column)];
  }

  void start_game(int game) {
    const auto g = static_cast<std::size_t>(game);
    std::fill_n(cells_.begin() + game * kCells, kCells, std::uint8_t{0});
    to_move_[g] = static_cast<std::uint8_t>(rngs_[2 * g].next() & 1U);
    moves_[g] = 0;
    elapsed_[g] = 0;
    returns_[2 * g] = returns_[2 * g + 1] = 0.0;
  }

  /// Whether the stone just put at (row, column) makes four in a line of its colour.
  [[nodiscard]] bool makes_four(int game, int row, int column) const {
    const std::uint8_t stone = cell(game, row, column);
    constexpr std::array<std::array<int, 2>, 4> kDirections{{{0, 1}, {1, 0}, {1, 1}, {1, -1}}};
    for (const auto& [dr, dc] : kDirections) {
      int count = 1;
      for (int sign : {1, -1}) {
        int r = row + sign * dr;
        int c = column + sign * dc;
        while (r >= 0 && r < kRows && c >= 0 && c < kColumns && cell(game, r, c) == stone) {
          ++count;
          r += sign * dr;
          c += sign * dc;
        }
      }
      if (count >= 4) return true;
    }
    return false;
  }

  /// The mover of `game` drops a stone into `column` (its turn passes when the game goes on).
  MoveResult play(int game, int column) {
    const auto g = static_cast<std::size_t>(game);
    ++elapsed_[g];
    int row = 0;
    while (row < kRows && cell(game, row, column) != 0) ++row;
    if (row == kRows) return MoveResult{true, -1.0};  // a full column: the mover loses
    cell(game, row, column) = static_cast<std::uint8_t>(to_move_[g] + 1);
    ++moves_[g];
    if (makes_four(game, row, column)) return MoveResult{true, 1.0};
    if (moves_[g] == kCells) return MoveResult{true, 0.0};
    to_move_[g] = static_cast<std::uint8_t>(1 - to_move_[g]);
    return MoveResult{};
  }

  void observe_slot(int slot, float* row, std::int64_t col_stride) const {
    const int game = slot / 2;
    const int seat = slot % 2;
    for (int i = 0; i < kCells; ++i) {
      const std::uint8_t stone = cells_[static_cast<std::size_t>(game * kCells + i)];
      row[i * col_stride] = stone == seat + 1 ? 1.0F : 0.0F;
      row[(kCells + i) * col_stride] = stone != 0 && stone != seat + 1 ? 1.0F : 0.0F;
    }
    row[2 * kCells * col_stride] = to_move_[static_cast<std::size_t>(game)] == seat ? 1.0F : 0.0F;
  }

  void seed_block(std::span<const std::uint64_t> seeds) override {
    for (std::size_t i = 0; i < seeds.size(); ++i) rngs_[i].reseed(seeds[i]);
  }

  void reset_block(const ObservationRows& obs) override {
    for (int game = 0; game < games_; ++game) start_game(game);
    observe_block(obs);
  }

  void step_block(const ActionBatch& actions, const OutputView& out) override {
    for (int game = 0; game < games_; ++game) {
      const auto g = static_cast<std::size_t>(game);
      const int mover = 2 * game + to_move_[g];
      const int other = 2 * game + 1 - to_move_[g];
      const MoveResult result = play(game, actions.discrete[static_cast<std::size_t>(mover)]);
      out.rewards[mover] = static_cast<float>(result.mover_reward);
      out.rewards[other] = static_cast<float>(-result.mover_reward);
      returns_[static_cast<std::size_t>(mover)] += result.mover_reward;
      returns_[static_cast<std::size_t>(other)] -= result.mover_reward;
      for (const int slot : {2 * game, 2 * game + 1}) {
        out.terminated[slot] = result.game_over;
        out.truncated[slot] = false;
        if (result.game_over) {
          if (out.episode_return) out.episode_return[slot] = static_cast<float>(returns_[static_cast<std::size_t>(slot)]);
          if (out.episode_length) out.episode_length[slot] = elapsed_[g];
        }
      }
      if (result.game_over) start_game(game);
      observe_slot(2 * game, out.obs.row(2 * game), out.obs.col_stride);
      observe_slot(2 * game + 1, out.obs.row(2 * game + 1), out.obs.col_stride);
    }
  }

  void random_steps_env(int env_index, std::int64_t num_steps, Rng& action_rng) override {
    if (env_index % 2 != 0) return;  // the game is its seat-0 slot's to warm up
    const int game = env_index / 2;
    for (std::int64_t t = 0; t < num_steps; ++t) {
      const MoveResult result = play(game, static_cast<int>(action_rng.next() % kColumns));
      const auto mover = static_cast<std::size_t>(2 * game + to_move_[static_cast<std::size_t>(game)]);
      returns_[mover] += result.mover_reward;
      returns_[mover ^ 1U] -= result.mover_reward;
      if (result.game_over) start_game(game);
    }
  }

  void observe_block(const ObservationRows& obs) const override {
    for (int slot = 0; slot < num_envs(); ++slot) observe_slot(slot, obs.row(slot), obs.col_stride);
  }

  void read_state(int env_index, std::span<double> state) const override {
    const int game = env_index / 2;
    for (int i = 0; i < kCells; ++i) state[static_cast<std::size_t>(i)] = cells_[static_cast<std::size_t>(game * kCells + i)];
    state[kCells] = to_move_[static_cast<std::size_t>(game)];
    state[kCells + 1] = moves_[static_cast<std::size_t>(game)];
  }

  void write_state(int env_index, std::span<const double> state, int elapsed_steps, double episode_return) override {
    const int game = env_index / 2;
    const auto g = static_cast<std::size_t>(game);
    for (int i = 0; i < kCells; ++i) {
      const double value = state[static_cast<std::size_t>(i)];
      if (value != 0.0 && value != 1.0 && value != 2.0) {
        throw std::invalid_argument("ConnectFour-v0 state: cell " + std::to_string(i) + " must be 0, 1 or 2");
      }
      cells_[static_cast<std::size_t>(game * kCells + i)] = static_cast<std::uint8_t>(value);
    }
    if (state[kCells] != 0.0 && state[kCells] != 1.0) {
      throw std::invalid_argument("ConnectFour-v0 state: the seat to move must be 0 or 1");
    }
    to_move_[g] = static_cast<std::uint8_t>(state[kCells]);
    moves_[g] = static_cast<int>(state[kCells + 1]);
    elapsed_[g] = elapsed_steps;
    returns_[static_cast<std::size_t>(env_index)] = episode_return;
  }

  [[nodiscard]] int read_elapsed_steps(int env_index) const override {
    return elapsed_[static_cast<std::size_t>(env_index / 2)];
  }

  const int games_;
  std::vector<std::uint8_t> cells_;    // games x 42, row-major from the bottom row: 0 empty, 1 seat 0, 2 seat 1
  std::vector<std::uint8_t> to_move_;  // per game: the seat whose action counts
  std::vector<int> moves_;             // per game: stones on the board
  std::vector<int> elapsed_;           // per game: steps of the current episode (an illegal move is one too)
  std::vector<Rng> rngs_;              // per slot; a game draws from its seat-0 slot's
  std::vector<double> returns_;        // per slot
};

}  // namespace

std::unique_ptr<VectorEnv> make_connect_four_env(int num_envs, std::uint64_t seed) {
  return std::make_unique<ConnectFourEnv>(num_envs, seed);
}

}  // namespace pysf::envs
