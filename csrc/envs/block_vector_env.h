// BlockVectorEnv<Dynamics>: a VectorEnv made of a physics model (Dynamics) plus everything the envs
// share: per-env random streams, the TimeLimit, episode bookkeeping, auto-reset and the output writes.
//
// The per-env step is a non-virtual, inlinable call in a tight loop over the block; the only virtual
// call is the one per block (VectorEnv::step -> step_block). Instantiate it in the translation unit
// that defines the Dynamics class (each env's .cpp, where the class is private to an anonymous
// namespace and only a factory returning the VectorEnv is exported), so that its member functions
// inline into the loop.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <vector>

#include "envs/rng.h"
#include "envs/vector_env.h"

namespace pysf::envs {

/// One env step as the bare gymnasium env reports it (the TimeLimit is applied by BlockVectorEnv).
struct Transition {
  double reward = 0.0;  ///< the Python float gymnasium returns; rounded to float32 only on output
  bool terminated = false;
};

/// The physics of one env type, for all envs of a block, state kept structure-of-arrays.
///   spec()                       the EnvSpec (spaces, TimeLimit) of the type
///   kStateSize                   values in get_state / set_state
///   kDiscreteActions             true: step takes std::int32_t in [0, n); false: const float* (k values,
///                                unclipped: the dynamics clip exactly where gymnasium does)
///   Dynamics(int num_envs)       storage for num_envs envs (their state is unspecified until reset)
///   reset(i, rng)                draws env i's initial state from rng, as gymnasium's reset() does
///   step(i, action)              advances env i by one step, as gymnasium's step() does
///   observe(i, row, col_stride)  writes env i's observation: row[j * col_stride], j < obs_dim
///   get_state / set_state(i, s)  the physical state as doubles
template <typename D>
concept EnvDynamics = requires(D dynamics, const D& const_dynamics, int i, Rng& rng, float* row, std::int64_t stride,
                               std::span<double> state_out, std::span<const double> state_in) {
  { D::spec() } -> std::convertible_to<EnvSpec>;
  { D::kStateSize } -> std::convertible_to<int>;
  { D::kDiscreteActions } -> std::convertible_to<bool>;
  requires std::constructible_from<D, int>;
  dynamics.reset(i, rng);
  const_dynamics.observe(i, row, stride);
  const_dynamics.get_state(i, state_out);
  dynamics.set_state(i, state_in);
  requires(D::kDiscreteActions && requires { { dynamics.step(i, std::int32_t{}) } -> std::same_as<Transition>; }) ||
              (!D::kDiscreteActions &&
               requires(const float* action) { { dynamics.step(i, action) } -> std::same_as<Transition>; });
};

template <EnvDynamics Dynamics>
class BlockVectorEnv final : public VectorEnv {
 public:
  /// `num_envs` envs seeded with seed(seed). Call reset() before the first step().
  BlockVectorEnv(int num_envs, std::uint64_t seed)
      : VectorEnv(Dynamics::spec(), num_envs),
        max_episode_steps_(spec().max_episode_steps),
        dynamics_(num_envs),
        rngs_(static_cast<std::size_t>(num_envs)),
        elapsed_steps_(static_cast<std::size_t>(num_envs), 0),
        episode_returns_(static_cast<std::size_t>(num_envs), 0.0) {
    VectorEnv::seed(seed);
  }

  [[nodiscard]] int state_size() const noexcept override { return Dynamics::kStateSize; }

 private:
  void seed_block(std::span<const std::uint64_t> seeds) override {
    for (std::size_t i = 0; i < seeds.size(); ++i) rngs_[i].reseed(seeds[i]);
  }

  void reset_block(const ObservationRows& obs) override {
    for (int i = 0; i < num_envs(); ++i) {
      start_episode(i);
      dynamics_.observe(i, obs.row(i), obs.col_stride);
    }
  }

  // flatten: the per-env dynamics calls are inlined into this loop (GCC otherwise keeps the larger
  // ones, e.g. CartPole's step, out of line).
  [[gnu::flatten]] void step_block(const ActionBatch& actions, const OutputView& out) override {
    const int n = num_envs();
    for (int i = 0; i < n; ++i) {
      Transition transition;
      if constexpr (Dynamics::kDiscreteActions) {
        transition = dynamics_.step(i, actions.discrete[static_cast<std::size_t>(i)]);
      } else {
        transition = dynamics_.step(i, actions.box.data() + i * actions.box_size);
      }
      const auto env = static_cast<std::size_t>(i);
      const std::int32_t length = ++elapsed_steps_[env];
      const double episode_return = episode_returns_[env] += transition.reward;
      const bool truncated = length >= max_episode_steps_;
      out.rewards[i] = static_cast<float>(transition.reward);
      out.terminated[i] = transition.terminated;
      out.truncated[i] = truncated;
      if (transition.terminated || truncated) [[unlikely]] {
        if (out.episode_return) out.episode_return[i] = static_cast<float>(episode_return);
        if (out.episode_length) out.episode_length[i] = length;
        start_episode(i);  // Sample Factory's auto-reset: the row gets the new episode's first observation
      }
      dynamics_.observe(i, out.obs.row(i), out.obs.col_stride);
    }
  }

  // The env's own episode bookkeeping goes on as in step_block; nothing is written out.
  void random_steps_env(int i, std::int64_t num_steps, Rng& action_rng) override {
    const Space& space = spec().action_space;
    const auto env = static_cast<std::size_t>(i);
    std::vector<float> box(Dynamics::kDiscreteActions ? 0 : space.low.size());
    for (std::int64_t t = 0; t < num_steps; ++t) {
      Transition transition;
      if constexpr (Dynamics::kDiscreteActions) {
        transition = dynamics_.step(i, static_cast<std::int32_t>(action_rng.next() % static_cast<std::uint64_t>(space.n)));
      } else {
        for (std::size_t j = 0; j < box.size(); ++j) {
          box[j] = static_cast<float>(action_rng.uniform(space.low[j], space.high[j]));
        }
        transition = dynamics_.step(i, box.data());
      }
      const std::int32_t length = ++elapsed_steps_[env];
      episode_returns_[env] += transition.reward;
      if (transition.terminated || length >= max_episode_steps_) start_episode(i);
    }
  }

  void observe_block(const ObservationRows& obs) const override {
    for (int i = 0; i < num_envs(); ++i) dynamics_.observe(i, obs.row(i), obs.col_stride);
  }

  void read_state(int env_index, std::span<double> state) const override { dynamics_.get_state(env_index, state); }

  void write_state(int env_index, std::span<const double> state, int elapsed_steps, double episode_return) override {
    dynamics_.set_state(env_index, state);
    elapsed_steps_[static_cast<std::size_t>(env_index)] = elapsed_steps;
    episode_returns_[static_cast<std::size_t>(env_index)] = episode_return;
  }

  [[nodiscard]] int read_elapsed_steps(int env_index) const override {
    return elapsed_steps_[static_cast<std::size_t>(env_index)];
  }

  void start_episode(int i) {
    const auto env = static_cast<std::size_t>(i);
    dynamics_.reset(i, rngs_[env]);
    elapsed_steps_[env] = 0;
    episode_returns_[env] = 0.0;
  }

  const int max_episode_steps_;
  Dynamics dynamics_;
  std::vector<Rng> rngs_;
  std::vector<std::int32_t> elapsed_steps_;  // the TimeLimit counter, which is also the episode length
  std::vector<double> episode_returns_;      // summed in double, like gymnasium's RecordEpisodeStatistics
};

}  // namespace pysf::envs
