// TrajectoryBuffers: the pre-allocated rollout storage shared by env runners, inference and the learner,
// and kTrajectoryFields, the one table of its layout.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <array>
#include <cstdint>
#include <string>

#include "core/tensor_map.h"

namespace pysf::buffers {

/// Sample Factory's trajectory layout: every tensor is `[num_rows, T(+1), ...]` with T = rollout, one
/// row per env trajectory. Rows are handed out in *blocks* of `block_rows` consecutive rows (one block
/// holds one worker split's envs for one rollout), so a split's data at step t is the strided view
/// `tensor[block * block_rows : (block + 1) * block_rows, t]`.
///
/// The tensors are allocated by the owner (pysf/algo/sampling/buffers.py, from kTrajectoryFields and the
/// observation space), typically in shared memory so env worker processes can write them:
///   obs[key]  [rows, T+1, *shape]  the observation space's dtype; step T holds the observation after the
///                                  last step (for bootstrapping)
/// and one tensor per entry of kTrajectoryFields below. The struct only refers to the tensors (shared
/// handles); writes go straight into the storage.
struct TrajectoryBuffers {
  core::TensorMap obs;
  at::Tensor rnn_states;
  at::Tensor actions;
  at::Tensor action_logits;
  at::Tensor log_prob_actions;
  at::Tensor values;
  at::Tensor rewards;
  at::Tensor dones;
  at::Tensor time_outs;
  at::Tensor policy_version;
  at::Tensor policy_id;
  std::int64_t block_rows = 0;

  /// Number of steps per trajectory (T).
  [[nodiscard]] std::int64_t rollout() const { return rewards.size(1); }
  /// Number of blocks the rows are divided into.
  [[nodiscard]] std::int64_t num_blocks() const { return rewards.size(0) / block_rows; }
  /// First row of `block`.
  [[nodiscard]] std::int64_t first_row(std::int64_t block) const { return block * block_rows; }

  /// Throws std::invalid_argument naming the first tensor whose shape or dtype breaks kTrajectoryFields.
  void validate() const;
};

/// The size a field's trailing dimension takes (none: the field is `[rows, steps]`).
enum class TrailingSize { None, RnnState, NumActions, NumActionParameters };

/// Who writes a field while a block is filled.
enum class FieldWriter {
  Env,        ///< the env runner (a native runner thread or a Python env worker through shared memory)
  Inference,  ///< the inference server, from the policy's outputs
  Sampler,    ///< the rollout split's own bookkeeping
};

/// One tensor of the trajectory layout (observations aside, whose keys and shapes come from the space).
struct TrajectoryField {
  const char* name;                    ///< key in Python's buffers dict, and the member's name
  at::Tensor TrajectoryBuffers::*member;
  c10::ScalarType dtype;
  bool bootstrap_step;                 ///< T+1 steps instead of T: step T belongs to the next rollout's start
  TrailingSize trailing;
  double initial_value;                ///< what allocation fills in: a value that exposes reads of unwritten data
  FieldWriter writer;
  bool env_worker_view;                ///< Python env workers map it (they write it, or read actions from it)
  const char* policy_output;           ///< the policy output dict entry inference copies in (nullptr: none)
  std::int64_t policy_output_step;     ///< that entry goes to step t + this (new RNN states: the next step)
};

// Sample Factory's float sentinel for never-written data (the learner would see nonsense, not zeros).
inline constexpr double kUnwrittenFloat = -4242.42;

/// The layout, in allocation order. Everything that allocates, validates, maps or fills trajectory tensors
/// iterates this table (exported to Python as pysf._C.trajectory_fields()).
inline constexpr std::array<TrajectoryField, 10> kTrajectoryFields{{
    // name, member, dtype, T+1, trailing, initial, writer, env worker view, policy output, its step
    {"rnn_states", &TrajectoryBuffers::rnn_states, at::kFloat, true, TrailingSize::RnnState, kUnwrittenFloat,
     FieldWriter::Inference, false, "new_rnn_states", 1},
    {"actions", &TrajectoryBuffers::actions, at::kFloat, false, TrailingSize::NumActions, kUnwrittenFloat,
     FieldWriter::Inference, true, "actions", 0},
    {"action_logits", &TrajectoryBuffers::action_logits, at::kFloat, false, TrailingSize::NumActionParameters,
     kUnwrittenFloat, FieldWriter::Inference, false, "action_logits", 0},
    {"log_prob_actions", &TrajectoryBuffers::log_prob_actions, at::kFloat, false, TrailingSize::None, kUnwrittenFloat,
     FieldWriter::Inference, false, "log_prob_actions", 0},
    // Step T: the learner's bootstrap value, computed by the learner itself.
    {"values", &TrajectoryBuffers::values, at::kFloat, true, TrailingSize::None, kUnwrittenFloat,
     FieldWriter::Inference, false, "values", 0},
    // Scaled and clipped by the rollout split after the env wrote the raw rewards.
    {"rewards", &TrajectoryBuffers::rewards, at::kFloat, false, TrailingSize::None, kUnwrittenFloat,
     FieldWriter::Env, true, nullptr, 0},
    // terminated, then (rollout split) terminated or truncated
    {"dones", &TrajectoryBuffers::dones, at::kBool, false, TrailingSize::None, 1.0, FieldWriter::Env, true, nullptr, 0},
    // truncated by a time limit
    {"time_outs", &TrajectoryBuffers::time_outs, at::kBool, false, TrailingSize::None, 1.0, FieldWriter::Env, true,
     nullptr, 0},
    // The version of the weights that chose the action (PolicyOutput::policy_version).
    {"policy_version", &TrajectoryBuffers::policy_version, at::kInt, false, TrailingSize::None, -1.0,
     FieldWriter::Inference, false, nullptr, 0},
    // The policy that acted for the row (the split's agent -> policy mapping, split_assignment.h); -1 at the
    // steps of an agent its env reported inactive (written by the env worker): no learner trains on those.
    {"policy_id", &TrajectoryBuffers::policy_id, at::kInt, false, TrailingSize::None, -1.0, FieldWriter::Sampler,
     true, nullptr, 0},
}};

/// What allocation fills an observation tensor of `dtype` with (floats: kUnwrittenFloat, bool: false,
/// integers: Sample Factory's 43).
[[nodiscard]] double unwritten_observation_value(c10::ScalarType dtype);

/// `tensor[block rows, step]`: the strided view of one block at one time step.
at::Tensor block_step(const at::Tensor& tensor, const TrajectoryBuffers& buffers, std::int64_t block,
                      std::int64_t step);

}  // namespace pysf::buffers
