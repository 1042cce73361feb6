#include "sampler/rollout_split.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace pysf::sampler {

RolloutSplit::RolloutSplit(SplitAssignment assignment, const buffers::TrajectoryBuffers& buffers, BlockQueues queues,
                           RewardShaping shaping)
    : assignment_(std::move(assignment)), buffers_(buffers), queues_(queues), shaping_(shaping) {
  if (assignment_.num_rows() != buffers_.block_rows) {
    throw std::invalid_argument("RolloutSplit: the assignment has " + std::to_string(assignment_.num_rows()) +
                                " rows but a block has " + std::to_string(buffers_.block_rows));
  }
  // Every method runs its tensor ops in InferenceMode (cheaper dispatch than NoGrad; the sampler never needs
  // autograd): the carry tensors made here are inference tensors, and are only ever written in InferenceMode.
  const c10::InferenceMode inference_mode;
  for (const auto& [key, tensor] : buffers_.obs) {
    carry_obs_.insert_or_assign(key, at::empty_like(block_step(tensor, buffers_, 0, 0)));
  }
  carry_rnn_states_ = at::empty_like(block_step(buffers_.rnn_states, buffers_, 0, 0));
  policy_ids_ = at::tensor(c10::ArrayRef<std::int32_t>(assignment_.policy_ids), at::kInt);
  episodes_since_draw_.assign(static_cast<std::size_t>(assignment_.num_envs()), 0);
  mapping_rng_.reseed(assignment_.policy_mapping_seed);
}

std::int32_t RolloutSplit::policy_of_row(std::int64_t row) const {
  return policy_ids_.const_data_ptr<std::int32_t>()[row];
}

at::Tensor RolloutSplit::at_step(const at::Tensor& tensor, std::int64_t step) const {
  return buffers::block_step(tensor, buffers_, block_, step);
}

bool RolloutSplit::acquire_block() {
  const std::optional<std::int64_t> block = queues_.free.acquire(assignment_.split_id);
  if (!block) return false;
  start_block(*block);
  return true;
}

bool RolloutSplit::try_acquire_block() {
  const std::optional<std::int64_t> block = queues_.free.try_acquire(assignment_.split_id);
  if (!block) return false;
  start_block(*block);
  return true;
}

void RolloutSplit::start_block(std::int64_t block) {
  block_ = block;
  step_ = 0;
  const c10::InferenceMode inference_mode;
  if (assignment_.policy_resample_episodes > 0) {
    at_step(buffers_.policy_id, 0).copy_(policy_ids_);  // the later steps as the mapping evolves (finish_step)
  } else {  // a fixed mapping: the whole block at once
    buffers_.policy_id.narrow(0, buffers_.first_row(block), buffers_.block_rows).copy_(policy_ids_.unsqueeze(1));
  }
  if (has_carry_) {
    for (const auto& [key, tensor] : buffers_.obs) at_step(tensor, 0).copy_(carry_obs_.at(key));
    at_step(buffers_.rnn_states, 0).copy_(carry_rnn_states_);
  } else {
    at_step(buffers_.rnn_states, 0).zero_();
  }
}

bool RolloutSplit::finish_step() {
  const c10::InferenceMode inference_mode;
  at::Tensor rewards = at_step(buffers_.rewards, step_);
  if (shaping_.scale != 1.0F) rewards.mul_(shaping_.scale);
  rewards.clamp_(-shaping_.clip, shaping_.clip);
  at::Tensor dones = at_step(buffers_.dones, step_);
  dones.logical_or_(at_step(buffers_.time_outs, step_));
  at_step(buffers_.rnn_states, step_ + 1).masked_fill_(dones.unsqueeze(1), 0.0);
  const bool redrawn = assignment_.policy_resample_episodes > 0;
  if (redrawn) redraw_policies_after_episodes(dones);
  ++step_;
  if (step_ < buffers_.rollout()) {
    if (redrawn) at_step(buffers_.policy_id, step_).copy_(policy_ids_);
    return true;
  }
  return complete_block();
}

void RolloutSplit::redraw_policies_after_episodes(const at::Tensor& dones) {
  const at::Tensor done_rows = dones.contiguous();
  const bool* done = done_rows.const_data_ptr<bool>();
  auto* policy = policy_ids_.mutable_data_ptr<std::int32_t>();
  const std::int64_t agents = assignment_.agents_per_env;
  const auto num_policies = static_cast<std::uint64_t>(assignment_.num_policies);
  auto draw = [&] { return static_cast<std::int32_t>(mapping_rng_.next() % num_policies); };
  for (std::int64_t row = 0; row < buffers_.block_rows; ++row) {
    if (!done[row]) continue;
    std::int64_t& episodes = episodes_since_draw_[static_cast<std::size_t>(row / agents)];
    if (++episodes < assignment_.policy_resample_episodes * agents) continue;
    episodes = 0;
    const std::int64_t first = row - row % agents;
    const std::int32_t whole_env = assignment_.mix_policies_in_one_env ? 0 : draw();
    for (std::int64_t r = first; r < first + agents; ++r) policy[r] = assignment_.mix_policies_in_one_env ? draw() : whole_env;
  }
}

bool RolloutSplit::complete_block() {
  const std::int64_t last = buffers_.rollout();
  {
    const c10::InferenceMode inference_mode;
    for (const auto& [key, tensor] : buffers_.obs) carry_obs_.find(key)->copy_(at_step(tensor, last));
    carry_rnn_states_.copy_(at_step(buffers_.rnn_states, last));
    has_carry_ = true;
  }
  const std::int64_t completed = block_;
  block_ = -1;
  return queues_.completed.push(completed);
}

}  // namespace pysf::sampler
