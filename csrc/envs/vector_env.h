// VectorEnv: a block of independent environments of one type, stepped together by one call.
//
// The rollout engine owns blocks of envs and steps each block with one call that writes straight into
// its trajectory buffers. There is one virtual call per block, never per env: an implementation runs a
// tight loop over its envs (see block_vector_env.h, which every native env uses).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "envs/rng.h"

namespace pysf::envs {

/// A gymnasium-style space, restricted to what the native envs need. Observations are always a float32
/// Box; actions are a Discrete (gymnasium dtype int64, start 0) or a float32 Box.
struct Space {
  enum class Kind { Discrete, Box };

  Kind kind = Kind::Box;
  /// Discrete: the number of actions; valid actions are 0 .. n-1. 0 for a Box.
  std::int64_t n = 0;
  /// Box: the shape of one element. Discrete: empty (one scalar).
  std::vector<std::int64_t> shape;
  /// Box: element-wise bounds, row-major, flat_size() values each, +-infinity where unbounded; exactly
  /// the float32 values of gymnasium's Box.low / Box.high. Empty for a Discrete.
  std::vector<float> low;
  std::vector<float> high;

  [[nodiscard]] static Space discrete(std::int64_t n);
  /// Throws std::invalid_argument unless low and high both have product(shape) values.
  [[nodiscard]] static Space box(std::vector<std::int64_t> shape, std::vector<float> low, std::vector<float> high);

  /// Scalars in one element: the product of `shape` for a Box, 1 for a Discrete.
  [[nodiscard]] std::int64_t flat_size() const;
  /// "Discrete(2)", "Box(-2, 2, (1,), float32)": for error messages and reprs.
  [[nodiscard]] std::string to_string() const;

  bool operator==(const Space&) const = default;
};

/// What an env is, as gymnasium's registry would say: spaces, TimeLimit and solved threshold.
struct EnvSpec {
  std::string name;  ///< the gymnasium id, e.g. "CartPole-v1"
  Space observation_space;
  Space action_space;
  /// TimeLimit: an episode is truncated at the step where its length reaches this (gymnasium's
  /// `elapsed >= max_episode_steps`); it may be terminated at that same step too.
  int max_episode_steps = 0;
  std::optional<double> reward_threshold;  ///< gymnasium's reward_threshold, where it has one
  /// Agents that play one env together (Sample Factory's num_agents): a block's slots then come in groups,
  /// slots k * num_agents ... (k + 1) * num_agents - 1 being the agents of env k (a board game's seats), and
  /// num_envs() counts slots, always a multiple of num_agents. 1 for a single-agent env.
  int num_agents = 1;
};

/// Where one step() (or reset()) of a block writes its results: one row per env, N = num_envs().
///
/// Every tensor lives on the CPU and may be a strided view into a larger buffer (e.g. buffer[rows, t]):
/// only dtypes and sizes are required, strides are arbitrary (non-negative); the envs write through
/// data_ptr() and strides(). The tensors must not overlap one another.
struct StepOutput {
  at::Tensor obs;             ///< [N, obs_dim] float32, obs_dim = observation_space.flat_size()
  at::Tensor rewards;         ///< [N] float32
  at::Tensor terminated;      ///< [N] bool: the episode ended in a terminal state of the MDP
  at::Tensor truncated;       ///< [N] bool: the episode hit max_episode_steps
  /// [N] float32 / [N] int32, or undefined tensors to skip them. Written only in the rows of envs whose
  /// episode finished in this step (terminated or truncated): its undiscounted return and its length in
  /// steps. Other rows are left untouched.
  at::Tensor episode_return;
  at::Tensor episode_length;
};

// ---- What an implementation receives: validated outputs and actions as raw pointers and strides ----

/// A strided [N] output column: element i lives at data[i * stride].
template <typename T>
struct Column {
  T* data = nullptr;
  std::int64_t stride = 0;
  T& operator[](std::int64_t i) const noexcept { return data[i * stride]; }
  explicit operator bool() const noexcept { return data != nullptr; }
};

/// A strided [N, obs_dim] observation matrix.
struct ObservationRows {
  float* data = nullptr;
  std::int64_t row_stride = 0;
  std::int64_t col_stride = 0;
  [[nodiscard]] float* row(std::int64_t i) const noexcept { return data + i * row_stride; }
};

/// A validated StepOutput, as raw pointers and element strides (episode columns may be null).
struct OutputView {
  ObservationRows obs;
  Column<float> rewards;
  Column<bool> terminated;
  Column<bool> truncated;
  Column<float> episode_return;
  Column<std::int32_t> episode_length;
};

/// Validated actions, contiguous: `discrete` ([N]) for a Discrete action space, `box` ([N, box_size]
/// row-major) for a Box.
struct ActionBatch {
  std::span<const std::int32_t> discrete;
  std::span<const float> box;
  std::int64_t box_size = 0;
};

/// A block of `num_envs()` independent environments of one type, state kept structure-of-arrays.
///
/// Semantics (Sample Factory's): step() steps every env with its action and, for any env whose episode
/// finished in that call (terminated or truncated), immediately starts the next episode: the
/// observation it writes for that env is the first observation of the new episode, while the reward,
/// the flags and episode_return / episode_length describe the step and episode that just finished.
///
/// Determinism: env i draws its initial states from its own random stream, seeded from
/// (seed, i) only, so a block's trajectories depend only on its seed and the actions it is given, and
/// env i behaves the same in blocks of any size.
///
/// Not thread-safe: one thread at a time per instance. Distinct instances share nothing.
/// Errors: the public member functions validate their arguments before changing anything, so a call
/// that throws leaves the envs exactly as they were.
class VectorEnv {
 public:
  virtual ~VectorEnv() = default;
  VectorEnv(const VectorEnv&) = delete;
  VectorEnv& operator=(const VectorEnv&) = delete;
  VectorEnv(VectorEnv&&) = delete;
  VectorEnv& operator=(VectorEnv&&) = delete;

  [[nodiscard]] const EnvSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] int num_envs() const noexcept { return num_envs_; }
  /// Floats per observation row (observation_space.flat_size()).
  [[nodiscard]] int observation_size() const noexcept { return observation_size_; }
  /// Values in get_state() / set_state() for one env.
  [[nodiscard]] virtual int state_size() const noexcept = 0;

  /// Re-seeds every env's random stream: env i gets derive_env_seed(base_seed, i) (see rng.h). Takes
  /// effect at the next initial state drawn (reset() or an auto-reset); current episodes go on.
  void seed(std::uint64_t base_seed);
  /// Same, with one explicit seed per env. Throws std::invalid_argument unless seeds.size() == num_envs().
  void seed(std::span<const std::uint64_t> seeds);

  /// Starts a new episode in every env (initial states drawn from each env's stream) and writes the
  /// initial observations to out.obs; the other fields of `out` are ignored and may be undefined.
  /// Must be called once before the first step(). Throws std::invalid_argument for a bad out.obs.
  void reset(const StepOutput& out);

  /// Steps every env once; see the class comment for the auto-reset semantics.
  ///
  /// actions: CPU tensor, possibly strided.
  ///   Discrete action space: [N] or [N, 1], int64, int32, float32 or float64 (the engine's buffers keep
  ///   every action as float32); each value must be an integer in [0, n).
  ///   Box action space with k = action_space.flat_size(): [N, k] (or [N] when k == 1), float32 or
  ///   float64. Values outside the box are clipped by the env exactly where gymnasium clips them.
  /// Throws std::invalid_argument naming the env and the first bad index for an invalid action, and for
  /// a wrong shape, dtype or device of `actions` or of a tensor in `out`; std::logic_error if reset() was
  /// never called.
  void step(const at::Tensor& actions, const StepOutput& out);

  /// The physical state of env `env_index` (see classic_control.h for each env's layout, e.g. CartPole
  /// [x, x_dot, theta, theta_dot]), as the doubles gymnasium keeps in `env.unwrapped.state`.
  /// Throws std::out_of_range for a bad index.
  [[nodiscard]] std::vector<double> get_state(int env_index) const;
  /// Puts env `env_index` into `state` (state_size() values) at step `elapsed_steps` of an episode that
  /// has so far earned `episode_return`: the next step() continues from there, and its TimeLimit counts
  /// on from elapsed_steps. Used to synchronise a native env with a gymnasium one. Throws
  /// std::out_of_range for a bad index, std::invalid_argument for a wrong state size or an
  /// elapsed_steps outside [0, max_episode_steps).
  void set_state(int env_index, std::span<const double> state, int elapsed_steps, double episode_return = 0.0);

  /// Steps taken in env `env_index`'s current episode (its TimeLimit counter).
  [[nodiscard]] int elapsed_steps(int env_index) const;

  /// Sample Factory's decorrelation warm-up (--decorrelate_envs_on_one_worker) of env `env_index` (with
  /// spec().num_agents > 1, the first slot of a group warms up the whole env and the others' calls do nothing):
  /// `num_steps` steps with uniformly random actions drawn from `action_rng` (Discrete: each of the n
  /// actions equally likely; Box: uniform between low and high, element-wise), starting the next
  /// episode wherever one ends. Nothing is written anywhere: the steps belong to no trajectory and the
  /// episodes that end during them are reported nowhere; the episode running at the end keeps counting
  /// its length and return (and its TimeLimit). Call observe() afterwards for the new observations.
  /// Throws std::logic_error if reset() was never called, std::out_of_range for a bad index and
  /// std::invalid_argument for a negative num_steps or a Box action space with an unbounded element.
  void random_steps(int env_index, std::int64_t num_steps, Rng& action_rng);

  /// Writes every env's current observation into `obs` (float32 [N, obs_dim], any strides, as
  /// StepOutput.obs). Throws std::invalid_argument for a bad `obs`.
  void observe(const at::Tensor& obs) const;

 protected:
  /// Throws std::invalid_argument for num_envs < 1 or a spec whose observation space is not a Box.
  VectorEnv(EnvSpec spec, int num_envs);

  // The implementation hooks, called only with validated arguments. One call handles the whole block.
  virtual void seed_block(std::span<const std::uint64_t> seeds) = 0;
  virtual void reset_block(const ObservationRows& obs) = 0;
  virtual void step_block(const ActionBatch& actions, const OutputView& out) = 0;
  virtual void random_steps_env(int env_index, std::int64_t num_steps, Rng& action_rng) = 0;
  virtual void observe_block(const ObservationRows& obs) const = 0;
  virtual void read_state(int env_index, std::span<double> state) const = 0;
  virtual void write_state(int env_index, std::span<const double> state, int elapsed_steps, double episode_return) = 0;
  [[nodiscard]] virtual int read_elapsed_steps(int env_index) const = 0;

 private:
  [[nodiscard]] ObservationRows checked_observation_rows(const at::Tensor& obs) const;
  [[nodiscard]] ActionBatch decode_actions(const at::Tensor& actions);
  void check_env_index(int env_index) const;

  EnvSpec spec_;
  int num_envs_;
  int observation_size_;
  bool was_reset_ = false;
  // Scratch for decode_actions, kept so that stepping allocates nothing.
  std::vector<std::int32_t> discrete_actions_;
  std::vector<float> box_actions_;
};

}  // namespace pysf::envs
