// The parts of VectorEnv every env shares: spaces, argument validation and action decoding.
#include "envs/vector_env.h"

#include <c10/core/ScalarType.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "envs/rng.h"

namespace pysf::envs {

namespace {

std::string describe(const at::Tensor& tensor) {
  if (!tensor.defined()) return "an undefined tensor";
  std::ostringstream text;
  text << c10::toString(tensor.scalar_type()) << " " << tensor.sizes() << " on " << tensor.device();
  return text.str();
}

std::string format_number(float value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

// An output with stride 0 over more than one element would make several envs write one location.
bool has_aliasing_stride(const at::Tensor& tensor) {
  const auto sizes = tensor.sizes();
  const auto strides = tensor.strides();
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] > 1 && strides[d] <= 0) return true;
  }
  return false;
}

// The untyped pointer: the dtype has been checked already, and the typed accessors would check it
// again (a measurable share of a 1-env step).
template <typename T>
T* typed_data(const at::Tensor& tensor) {
  return static_cast<T*>(tensor.mutable_data_ptr());
}

template <typename T>
const T* typed_const_data(const at::Tensor& tensor) {
  return static_cast<const T*>(tensor.const_data_ptr());
}

}  // namespace

// ---- Space -------------------------------------------------------------------------------------

Space Space::discrete(std::int64_t n) {
  if (n < 1) throw std::invalid_argument("Space::discrete: n must be >= 1, got " + std::to_string(n));
  Space space;
  space.kind = Kind::Discrete;
  space.n = n;
  return space;
}

Space Space::box(std::vector<std::int64_t> shape, std::vector<float> low, std::vector<float> high) {
  Space space;
  space.kind = Kind::Box;
  space.shape = std::move(shape);
  const auto size = static_cast<std::size_t>(space.flat_size());
  if (low.size() != size || high.size() != size) {
    throw std::invalid_argument("Space::box: low and high need " + std::to_string(size) + " values each, got " +
                                std::to_string(low.size()) + " and " + std::to_string(high.size()));
  }
  space.low = std::move(low);
  space.high = std::move(high);
  return space;
}

std::int64_t Space::flat_size() const {
  if (kind == Kind::Discrete) return 1;
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

std::string Space::to_string() const {
  std::ostringstream text;
  if (kind == Kind::Discrete) {
    text << "Discrete(" << n << ")";
    return text.str();
  }
  // Like gymnasium's repr: a scalar when every bound is the same, the full list otherwise.
  auto bounds = [&text](const std::vector<float>& values) {
    if (!values.empty() && std::all_of(values.begin(), values.end(), [&](float v) { return v == values[0]; })) {
      text << values[0];
      return;
    }
    text << "[";
    for (std::size_t i = 0; i < values.size(); ++i) text << (i ? ", " : "") << values[i];
    text << "]";
  };
  text << "Box(";
  bounds(low);
  text << ", ";
  bounds(high);
  text << ", (";
  for (const auto extent : shape) text << extent << ",";
  text << "), float32)";
  return text.str();
}

// ---- VectorEnv ---------------------------------------------------------------------------------

VectorEnv::VectorEnv(EnvSpec spec, int num_envs)
    : spec_(std::move(spec)),
      num_envs_(num_envs),
      observation_size_(static_cast<int>(spec_.observation_space.flat_size())) {
  if (num_envs < 1) {
    throw std::invalid_argument(spec_.name + ": num_envs must be >= 1, got " + std::to_string(num_envs));
  }
  if (spec_.observation_space.kind != Space::Kind::Box) {
    throw std::invalid_argument(spec_.name + ": the observation space must be a Box");
  }
  if (spec_.action_space.kind == Space::Kind::Discrete) {
    discrete_actions_.resize(static_cast<std::size_t>(num_envs));
  } else {
    box_actions_.resize(static_cast<std::size_t>(num_envs * spec_.action_space.flat_size()));
  }
}

void VectorEnv::seed(std::uint64_t base_seed) {
  std::vector<std::uint64_t> seeds(static_cast<std::size_t>(num_envs_));
  for (int i = 0; i < num_envs_; ++i) seeds[static_cast<std::size_t>(i)] = derive_env_seed(base_seed, i);
  seed_block(seeds);
}

void VectorEnv::seed(std::span<const std::uint64_t> seeds) {
  if (seeds.size() != static_cast<std::size_t>(num_envs_)) {
    throw std::invalid_argument(spec_.name + ": seed() needs one seed per env (" + std::to_string(num_envs_) +
                                "), got " + std::to_string(seeds.size()));
  }
  seed_block(seeds);
}

void VectorEnv::reset(const StepOutput& out) {
  const ObservationRows obs = checked_observation_rows(out.obs);
  reset_block(obs);
  was_reset_ = true;
}

void VectorEnv::step(const at::Tensor& actions, const StepOutput& out) {
  if (!was_reset_) throw std::logic_error(spec_.name + ": step() called before the first reset()");

  // Validate everything before any env moves, so that a throwing call changes nothing.
  OutputView view;
  view.obs = checked_observation_rows(out.obs);

  auto column = [&]<typename T>(const at::Tensor& tensor, const char* field, bool optional, Column<T>& result) {
    if (optional && !tensor.defined()) return;
    const auto dtype = c10::CppTypeToScalarType<T>::value;
    if (!tensor.defined() || !tensor.device().is_cpu() || tensor.scalar_type() != dtype || tensor.dim() != 1 ||
        tensor.size(0) != num_envs_ || has_aliasing_stride(tensor)) {
      throw std::invalid_argument(spec_.name + ": StepOutput." + field + " must be a CPU " + c10::toString(dtype) +
                                  " tensor of shape [" + std::to_string(num_envs_) + "]" +
                                  (optional ? " (or undefined)" : "") + ", got " + describe(tensor));
    }
    result = Column<T>{typed_data<T>(tensor), tensor.stride(0)};
  };
  column(out.rewards, "rewards", false, view.rewards);
  column(out.terminated, "terminated", false, view.terminated);
  column(out.truncated, "truncated", false, view.truncated);
  column(out.episode_return, "episode_return", true, view.episode_return);
  column(out.episode_length, "episode_length", true, view.episode_length);

  const ActionBatch batch = decode_actions(actions);
  step_block(batch, view);
}

std::vector<double> VectorEnv::get_state(int env_index) const {
  check_env_index(env_index);
  std::vector<double> state(static_cast<std::size_t>(state_size()));
  read_state(env_index, state);
  return state;
}

void VectorEnv::set_state(int env_index, std::span<const double> state, int elapsed_steps, double episode_return) {
  check_env_index(env_index);
  if (state.size() != static_cast<std::size_t>(state_size())) {
    throw std::invalid_argument(spec_.name + ": set_state needs " + std::to_string(state_size()) +
                                " state values, got " + std::to_string(state.size()));
  }
  if (elapsed_steps < 0 || elapsed_steps >= spec_.max_episode_steps) {
    throw std::invalid_argument(spec_.name + ": elapsed_steps must be in [0, " +
                                std::to_string(spec_.max_episode_steps) + "), got " + std::to_string(elapsed_steps));
  }
  write_state(env_index, state, elapsed_steps, episode_return);
}

int VectorEnv::elapsed_steps(int env_index) const {
  check_env_index(env_index);
  return read_elapsed_steps(env_index);
}

void VectorEnv::random_steps(int env_index, std::int64_t num_steps, Rng& action_rng) {
  if (!was_reset_) throw std::logic_error(spec_.name + ": random_steps() called before the first reset()");
  check_env_index(env_index);
  if (num_steps < 0) {
    throw std::invalid_argument(spec_.name + ": random_steps needs num_steps >= 0, got " + std::to_string(num_steps));
  }
  const Space& space = spec_.action_space;
  for (std::size_t j = 0; j < space.low.size(); ++j) {
    if (!std::isfinite(space.low[j]) || !std::isfinite(space.high[j])) {
      throw std::invalid_argument(spec_.name + ": random_steps draws uniform actions, which an unbounded " +
                                  space.to_string() + " does not have");
    }
  }
  random_steps_env(env_index, num_steps, action_rng);
}

void VectorEnv::observe(const at::Tensor& obs) const { observe_block(checked_observation_rows(obs)); }

ObservationRows VectorEnv::checked_observation_rows(const at::Tensor& obs) const {
  if (!obs.defined() || !obs.device().is_cpu() || obs.scalar_type() != at::kFloat || obs.dim() != 2 ||
      obs.size(0) != num_envs_ || obs.size(1) != observation_size_ || has_aliasing_stride(obs)) {
    throw std::invalid_argument(spec_.name + ": StepOutput.obs must be a CPU float32 tensor of shape [" +
                                std::to_string(num_envs_) + ", " + std::to_string(observation_size_) + "], got " +
                                describe(obs));
  }
  return ObservationRows{typed_data<float>(obs), obs.stride(0), obs.stride(1)};
}

ActionBatch VectorEnv::decode_actions(const at::Tensor& actions) {
  const Space& space = spec_.action_space;
  const std::int64_t k = space.flat_size();
  const bool discrete = space.kind == Space::Kind::Discrete;
  const bool shape_ok = actions.defined() && actions.dim() >= 1 && actions.size(0) == num_envs_ &&
                        ((actions.dim() == 2 && actions.size(1) == k) || (actions.dim() == 1 && k == 1));
  const auto dtype = actions.defined() ? actions.scalar_type() : at::kFloat;
  const bool dtype_ok = dtype == at::kFloat || dtype == at::kDouble ||
                        (discrete && (dtype == at::kLong || dtype == at::kInt));
  if (!shape_ok || !dtype_ok || !actions.device().is_cpu()) {
    const std::string n = std::to_string(num_envs_);
    throw std::invalid_argument(
        spec_.name + ": actions for " + space.to_string() + " must be a CPU tensor of shape " +
        (discrete ? "[" + n + "] or [" + n + ", 1], dtype int64, int32, float32 or float64"
                  : "[" + n + ", " + std::to_string(k) + "]" + (k == 1 ? " or [" + n + "]" : "") +
                        ", dtype float32 or float64") +
        ", got " + describe(actions));
  }
  const std::int64_t row_stride = actions.stride(0);
  const std::int64_t col_stride = actions.dim() == 2 ? actions.stride(1) : 0;

  if (discrete) {
    const std::int64_t n = space.n;
    auto is_valid = [n]<typename T>(T value) {
      if constexpr (std::is_floating_point_v<T>) {
        return value >= T(0) && value < static_cast<T>(n) && value == std::trunc(value);  // false for NaN
      } else {
        return static_cast<std::uint64_t>(value) < static_cast<std::uint64_t>(n);  // negative -> huge
      }
    };
    // One branch-free pass that converts and flags; only the exception path looks for the culprit.
    auto convert = [&]<typename T>(const T* data) {
      bool any_invalid = false;
      for (int i = 0; i < num_envs_; ++i) {
        const T value = data[i * row_stride];
        const bool valid = is_valid(value);
        discrete_actions_[static_cast<std::size_t>(i)] = valid ? static_cast<std::int32_t>(value) : 0;
        any_invalid |= !valid;
      }
      if (!any_invalid) return;
      for (int i = 0; i < num_envs_; ++i) {
        const T value = data[i * row_stride];
        if (is_valid(value)) continue;
        std::string shown;
        if constexpr (std::is_floating_point_v<T>) {
          shown = format_number(static_cast<float>(value));
        } else {
          shown = std::to_string(value);
        }
        throw std::invalid_argument(spec_.name + ": invalid action " + shown + " for env " + std::to_string(i) +
                                    ": the action space is " + space.to_string() +
                                    ", actions must be integers in [0, " + std::to_string(n) + ")");
      }
    };
    switch (dtype) {
      case at::kLong: convert(typed_const_data<std::int64_t>(actions)); break;
      case at::kInt: convert(typed_const_data<std::int32_t>(actions)); break;
      case at::kFloat: convert(typed_const_data<float>(actions)); break;
      default: convert(typed_const_data<double>(actions)); break;
    }
    return ActionBatch{.discrete = discrete_actions_, .box = {}, .box_size = 0};
  }

  auto copy = [&]<typename T>(const T* data) {
    float* out = box_actions_.data();
    for (int i = 0; i < num_envs_; ++i) {
      for (std::int64_t j = 0; j < k; ++j) *out++ = static_cast<float>(data[i * row_stride + j * col_stride]);
    }
  };
  if (dtype == at::kFloat) {
    copy(typed_const_data<float>(actions));
  } else {
    copy(typed_const_data<double>(actions));
  }
  return ActionBatch{.discrete = {}, .box = box_actions_, .box_size = k};
}

void VectorEnv::check_env_index(int env_index) const {
  if (env_index < 0 || env_index >= num_envs_) {
    throw std::out_of_range(spec_.name + ": env index " + std::to_string(env_index) + " out of range [0, " +
                            std::to_string(num_envs_) + ")");
  }
}

}  // namespace pysf::envs
