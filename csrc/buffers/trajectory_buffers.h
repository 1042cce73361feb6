// TrajectoryBuffers: the pre-allocated rollout storage shared by env runners, inference and the learner.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "inference/tensor_map.h"

namespace pysf::buffers {

/// Sample Factory's trajectory layout: every tensor is `[num_rows, T(+1), ...]` with T = rollout, one
/// row per env trajectory. Rows are handed out in *blocks* of `block_rows` consecutive rows (one block
/// holds one worker split's envs for one rollout), so a split's data at step t is the strided view
/// `tensor[block * block_rows : (block + 1) * block_rows, t]`.
///
/// Tensors (allocated by the owner, typically in shared memory so env worker processes can write them):
///   obs[key]          [rows, T+1, *shape]   (the observation space's dtype)
///   rnn_states        [rows, T+1, R] float32
///   actions           [rows, T, num_actions] float32
///   action_logits     [rows, T, num_params] float32
///   log_prob_actions  [rows, T] float32
///   values            [rows, T+1] float32   (step T is the learner's bootstrap value)
///   rewards           [rows, T] float32     (scaled and clipped)
///   dones, time_outs  [rows, T] bool        (time_outs: the episode was truncated by a time limit)
///   policy_version    [rows, T] int32       (version of the weights that chose the action)
///   policy_id         [rows, T] int32
///   valids            [rows, T+1] bool
/// Step T of obs and rnn_states holds the state after the last step (for bootstrapping).
///
/// The struct only refers to the tensors (shared handles); writes go straight into the storage.
struct TrajectoryBuffers {
  inference::TensorMap obs;
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
  at::Tensor valids;
  std::int64_t block_rows = 0;

  /// Number of steps per trajectory (T).
  [[nodiscard]] std::int64_t rollout() const { return rewards.size(1); }
  /// Number of blocks the rows are divided into.
  [[nodiscard]] std::int64_t num_blocks() const { return rewards.size(0) / block_rows; }
  /// First row of `block`.
  [[nodiscard]] std::int64_t first_row(std::int64_t block) const { return block * block_rows; }

  /// Throws std::invalid_argument naming the first tensor whose shape or dtype breaks the layout above.
  void validate() const;
};

/// `tensor[block rows, step]`: the strided view of one block at one time step.
at::Tensor block_step(const at::Tensor& tensor, const TrajectoryBuffers& buffers, std::int64_t block,
                      std::int64_t step);

}  // namespace pysf::buffers
