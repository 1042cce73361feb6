// RolloutSplit: one group of envs filling one trajectory block at a time.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "buffers/block_pool.h"
#include "buffers/bounded_queue.h"
#include "buffers/trajectory_buffers.h"
#include "core/tensor_map.h"
#include "envs/rng.h"
#include "sampler/inference_request.h"
#include "sampler/split_assignment.h"

namespace pysf::sampler {

/// The block queues every split shares: free blocks to fill and completed blocks for the learner.
struct BlockQueues {
  buffers::BlockPool& free;
  buffers::BoundedQueue<std::int64_t>& completed;
};

struct RewardShaping {
  float scale = 1.0F;  // --reward_scale
  float clip = 1000.0F;  // --reward_clip
};

/// The bookkeeping of one worker split (Sample Factory's `worker_num_splits` halves): which block it
/// fills and at which step, and the per-step finalisation both env paths share (native runners and
/// Python worker processes write observations, raw rewards, terminated flags into `dones` and
/// truncation flags into `time_outs`; this class does the rest).
///
/// Block life cycle: `acquire_block` takes a free block; at each step t the env side writes step t+1
/// observations and step t rewards/flags, then `finish_step` scales and clips rewards, sets dones =
/// terminated | truncated, zeroes the next RNN state of finished episodes; after
/// `rollout` steps it hands the block (with its bootstrap step T) to the completed queue and the split
/// `needs_block()`. The split owns the agent -> policy mapping (split_assignment.h): it starts as the
/// assignment's policy_ids, may be redrawn at episode ends in finish_step, and is written into the policy_id
/// buffer before each step's inference request (a fixed one for the whole block when the block starts). The next `acquire_block` continues in a new
/// free block whose step 0 receives the old
/// block's step-T observations and RNN states. Waiting for a free block is the back-pressure that
/// throttles sampling when the learner falls behind. Completing and acquiring are separate so that a
/// runner with several splits can finish all of them before it waits (synchronous sampling has exactly
/// one block per split: a runner that waited in the middle would never complete its other splits).
///
/// Not thread-safe: a split is driven by one thread at a time (its runner), with inference writes
/// ordered before the runner's next access by the request/notify hand-off.
class RolloutSplit {
 public:
  /// `assignment` (split_assignment.h) says which envs and policies the split's rows are.
  RolloutSplit(SplitAssignment assignment, const buffers::TrajectoryBuffers& buffers, BlockQueues queues,
               RewardShaping shaping);

  /// Takes a free block (waits for one). The first block starts with zero RNN states; later ones with
  /// the previous block's last observations and RNN states. False when shutting down.
  bool acquire_block();
  /// Like acquire_block() but never waits: false when no block is free right now (or shutting down).
  bool try_acquire_block();

  /// Finalises the current step (see above); completes the block after the last step. False when
  /// shutting down.
  bool finish_step();

  /// The block was completed and no new one was acquired yet.
  [[nodiscard]] bool needs_block() const { return block_ < 0; }

  [[nodiscard]] InferenceRequest request() const { return {assignment_.split_id, block_, step_}; }
  [[nodiscard]] int split_id() const { return assignment_.split_id; }
  [[nodiscard]] const SplitAssignment& assignment() const { return assignment_; }
  [[nodiscard]] std::int64_t block() const { return block_; }
  [[nodiscard]] std::int64_t step() const { return step_; }
  [[nodiscard]] std::int64_t rows() const { return buffers_.block_rows; }
  /// The policy block row `row` acts for now (at the current step).
  [[nodiscard]] std::int32_t policy_of_row(std::int64_t row) const;

  /// `tensor[current block rows, step]`.
  [[nodiscard]] at::Tensor at_step(const at::Tensor& tensor, std::int64_t step) const;

 private:
  /// Starts filling `block` at step 0.
  void start_block(std::int64_t block);
  bool complete_block();
  /// Counts the episodes that ended at the current step (`dones`, [rows] bool) and redraws the policies of the
  /// envs that reached policy_resample_episodes per agent.
  void redraw_policies_after_episodes(const at::Tensor& dones);

  const SplitAssignment assignment_;
  const buffers::TrajectoryBuffers& buffers_;
  BlockQueues queues_;
  const RewardShaping shaping_;
  std::int64_t block_ = -1;
  std::int64_t step_ = 0;
  bool has_carry_ = false;
  // Step-T observations / RNN states carried into the next block (the old one may be reused at once).
  core::TensorMap carry_obs_;
  at::Tensor carry_rnn_states_;
  at::Tensor policy_ids_;  // [rows] int32: the policy each row acts for now
  std::vector<std::int64_t> episodes_since_draw_;  // per env: its agents' episodes since its policies were drawn
  envs::Rng mapping_rng_;
};

}  // namespace pysf::sampler
