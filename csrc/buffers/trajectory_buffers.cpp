#include "buffers/trajectory_buffers.h"

#include <ATen/ATen.h>

#include <sstream>
#include <stdexcept>

namespace pysf::buffers {
namespace {

[[noreturn]] void layout_error(const std::string& what, const std::string& problem) {
  throw std::invalid_argument("TrajectoryBuffers: " + what + " " + problem);
}

}  // namespace

void TrajectoryBuffers::validate() const {
  if (!rewards.defined() || rewards.dim() != 2) layout_error("tensor 'rewards'", "must be [rows, T]");
  const std::int64_t rows = rewards.size(0);
  const std::int64_t steps = rewards.size(1);
  if (block_rows <= 0 || rows % block_rows != 0) {
    throw std::invalid_argument("TrajectoryBuffers: the number of rows (" + std::to_string(rows) +
                                ") must be a positive multiple of block_rows (" + std::to_string(block_rows) + ")");
  }
  if (obs.empty()) throw std::invalid_argument("TrajectoryBuffers: no observation tensors");
  for (const auto& [key, tensor] : obs) {
    if (!tensor.defined() || tensor.dim() < 2 || tensor.size(0) != rows || tensor.size(1) != steps + 1) {
      layout_error("obs['" + key + "']", "must be [rows, T+1, ...]");
    }
  }
  for (const TrajectoryField& field : kTrajectoryFields) {
    const at::Tensor& tensor = this->*field.member;
    const std::int64_t field_steps = field.bootstrap_step ? steps + 1 : steps;
    const std::int64_t dims = field.trailing == TrailingSize::None ? 2 : 3;
    std::ostringstream problem;
    if (!tensor.defined()) {
      problem << "is missing";
    } else if (tensor.dim() != dims || tensor.size(0) != rows || tensor.size(1) != field_steps) {
      problem << "has shape " << tensor.sizes() << ", expected [" << rows << ", " << field_steps
              << (dims == 3 ? ", n]" : "]");
    } else if (tensor.scalar_type() != field.dtype) {
      problem << "has dtype " << tensor.scalar_type() << ", expected " << c10::toString(field.dtype);
    } else {
      continue;
    }
    layout_error(std::string("tensor '") + field.name + "'", problem.str());
  }
}

double unwritten_observation_value(c10::ScalarType dtype) {
  if (c10::isFloatingType(dtype)) return kUnwrittenFloat;
  if (dtype == at::kBool) return 0.0;
  return 43.0;
}

at::Tensor block_step(const at::Tensor& tensor, const TrajectoryBuffers& buffers, std::int64_t block,
                      std::int64_t step) {
  return tensor.narrow(0, buffers.first_row(block), buffers.block_rows).select(1, step);
}

}  // namespace pysf::buffers
