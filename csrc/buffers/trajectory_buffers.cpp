#include "buffers/trajectory_buffers.h"

#include <ATen/ATen.h>

#include <sstream>
#include <stdexcept>

namespace pysf::buffers {
namespace {

void expect(const at::Tensor& tensor, const char* name, std::int64_t rows, std::int64_t steps, int min_dims,
            c10::ScalarType dtype) {
  std::ostringstream problem;
  if (!tensor.defined()) {
    problem << "is missing";
  } else if (tensor.dim() < min_dims || tensor.size(0) != rows || tensor.size(1) != steps) {
    problem << "has shape " << tensor.sizes() << ", expected [" << rows << ", " << steps << ", ...] with at least "
            << min_dims << " dims";
  } else if (tensor.scalar_type() != dtype) {
    problem << "has dtype " << tensor.scalar_type() << ", expected " << c10::toString(dtype);
  } else {
    return;
  }
  throw std::invalid_argument(std::string("TrajectoryBuffers: tensor '") + name + "' " + problem.str());
}

}  // namespace

void TrajectoryBuffers::validate() const {
  if (!rewards.defined() || rewards.dim() != 2) throw std::invalid_argument("TrajectoryBuffers: rewards must be [rows, T]");
  const std::int64_t rows = rewards.size(0);
  const std::int64_t steps = rewards.size(1);
  if (block_rows <= 0 || rows % block_rows != 0) {
    throw std::invalid_argument("TrajectoryBuffers: the number of rows (" + std::to_string(rows) +
                                ") must be a positive multiple of block_rows (" + std::to_string(block_rows) + ")");
  }
  if (obs.empty()) throw std::invalid_argument("TrajectoryBuffers: no observation tensors");
  for (const auto& [key, tensor] : obs) {
    if (!tensor.defined() || tensor.dim() < 2 || tensor.size(0) != rows || tensor.size(1) != steps + 1) {
      throw std::invalid_argument("TrajectoryBuffers: obs['" + key + "'] must be [rows, T+1, ...]");
    }
  }
  expect(rnn_states, "rnn_states", rows, steps + 1, 3, at::kFloat);
  expect(actions, "actions", rows, steps, 3, at::kFloat);
  expect(action_logits, "action_logits", rows, steps, 3, at::kFloat);
  expect(log_prob_actions, "log_prob_actions", rows, steps, 2, at::kFloat);
  expect(values, "values", rows, steps + 1, 2, at::kFloat);
  expect(rewards, "rewards", rows, steps, 2, at::kFloat);
  expect(dones, "dones", rows, steps, 2, at::kBool);
  expect(time_outs, "time_outs", rows, steps, 2, at::kBool);
  expect(policy_version, "policy_version", rows, steps, 2, at::kInt);
  expect(policy_id, "policy_id", rows, steps, 2, at::kInt);
  expect(valids, "valids", rows, steps + 1, 2, at::kBool);
}

at::Tensor block_step(const at::Tensor& tensor, const TrajectoryBuffers& buffers, std::int64_t block,
                      std::int64_t step) {
  return tensor.narrow(0, buffers.first_row(block), buffers.block_rows).select(1, step);
}

}  // namespace pysf::buffers
