#include "inference/policy.h"

#include <c10/core/GradMode.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/script.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "inference/left_right.h"

namespace pysf::inference {

namespace detail {

/// One independently loaded copy of the module. `state` aliases the module's parameter and buffer
/// tensors in state_names() order, so copying into it updates what forward computes with.
// (Not in the anonymous namespace: Policy::Impl, which has external linkage, holds replicas.)
struct PolicyReplica {
  torch::jit::Module module;
  torch::jit::Method forward_method;  // cached: Module::forward looks the method up by name per call
  std::vector<at::Tensor> state;
  std::int64_t version;
};

}  // namespace detail

namespace {

using detail::PolicyReplica;

constexpr const char* kContract =
    "forward(obs: Dict[str, Tensor], rnn_states: Tensor, deterministic: bool) -> Dict[str, Tensor]";

/// Parameters then buffers, recursive, with dotted names: the module's complete weight state.
std::vector<std::pair<std::string, at::Tensor>> named_state(const torch::jit::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> state;
  for (const auto& parameter : module.named_parameters(/*recurse=*/true)) {
    state.emplace_back(parameter.name, parameter.value);
  }
  for (const auto& buffer : module.named_buffers(/*recurse=*/true)) {
    state.emplace_back(buffer.name, buffer.value);
  }
  return state;
}

void check_forward_signature(const torch::jit::Method& forward) {
  const c10::FunctionSchema& schema = forward.function().getSchema();
  const auto obs_type = c10::DictType::create(c10::StringType::get(), c10::TensorType::get());
  const auto& arguments = schema.arguments();  // arguments[0] is self
  const auto& returns = schema.returns();
  const bool matches = arguments.size() == 4 && obs_type->isSubtypeOf(*arguments[1].type()) &&
                       c10::TensorType::get()->isSubtypeOf(*arguments[2].type()) &&
                       c10::BoolType::get()->isSubtypeOf(*arguments[3].type()) && returns.size() == 1 &&
                       returns[0].type()->isSubtypeOf(*obs_type);
  if (!matches) {
    std::ostringstream message;
    message << "Policy: the TorchScript module must have " << kContract << ", but it has " << schema;
    throw std::invalid_argument(message.str());
  }
}

PolicyReplica load_replica(const std::string& archive, c10::Device device, std::int64_t version) {
  std::istringstream stream(archive, std::ios::binary);
  torch::jit::Module module = torch::jit::load(stream, device);
  std::optional<torch::jit::Method> forward = module.find_method("forward");
  if (!forward) {
    throw std::invalid_argument(std::string("Policy: the TorchScript module has no forward method; expected ") +
                                kContract);
  }
  check_forward_signature(*forward);
  std::vector<at::Tensor> state;
  for (auto& [name, tensor] : named_state(module)) state.push_back(std::move(tensor));
  return PolicyReplica{std::move(module), std::move(*forward), std::move(state), version};
}

std::string format_shape(at::IntArrayRef shape) {
  std::ostringstream out;
  out << shape;
  return out.str();
}

std::string join(const std::vector<std::string>& items) {
  std::string joined;
  for (const auto& item : items) {
    if (!joined.empty()) joined += ", ";
    joined += item;
  }
  return "[" + joined + "]";
}

at::Tensor on_device(const at::Tensor& tensor, c10::Device device) {
  return tensor.device() == device ? tensor : tensor.to(device);
}

TensorMap to_tensor_map(const c10::IValue& result) {
  if (!result.isGenericDict()) {
    throw std::runtime_error(std::string("Policy: forward returned ") + result.tagKind() + ", expected " +
                             "Dict[str, Tensor]");
  }
  const c10::impl::GenericDict dict = result.toGenericDict();
  TensorMap outputs;
  outputs.reserve(dict.size());
  for (const auto& entry : dict) outputs.insert_or_assign(entry.key().toStringRef(), entry.value().toTensor());
  return outputs;
}

}  // namespace

class Policy::Impl {
 public:
  Impl(const std::string& archive, c10::Device device, std::int64_t initial_version)
      : device_(device), replicas_([&] { return load_replica(archive, device, initial_version); }) {
    replicas_.read([&](const PolicyReplica& replica) {
      for (auto& [name, tensor] : named_state(replica.module)) {
        state_index_.emplace(name, state_names_.size());
        state_names_.push_back(name);
        expected_shapes_.push_back(tensor.sizes().vec());
        expected_dtypes_.push_back(tensor.scalar_type());
      }
    });
  }

  /// The module's positional inputs, moved to the policy device. Built before a replica is pinned.
  [[nodiscard]] std::vector<c10::IValue> make_inputs(const TensorMap& obs, const at::Tensor& rnn_states,
                                                     bool deterministic) const {
    c10::Dict<std::string, at::Tensor> obs_dict;
    obs_dict.reserve(obs.size());
    for (const auto& [name, tensor] : obs) obs_dict.insert(name, on_device(tensor, device_));
    return {c10::IValue(std::move(obs_dict)), c10::IValue(on_device(rnn_states, device_)),
            c10::IValue(deterministic)};
  }

  [[nodiscard]] PolicyOutput run(std::vector<c10::IValue> inputs) const {
    // Thread-local, hence set on every calling thread. NoGrad rather than InferenceMode: inference
    // tensors could not be modified in place or saved for backward by the code consuming the outputs.
    const c10::NoGradGuard no_grad;
    auto [result, version] = replicas_.read([&](const PolicyReplica& replica) {
      return std::pair(replica.forward_method(std::move(inputs)), replica.version);
    });
    return PolicyOutput{to_tensor_map(result), version};
  }

  /// Checks `tensor` against the weight at `index`; appends a description of any mismatch to `problems`.
  void check_weight(std::size_t index, const at::Tensor& tensor, std::vector<std::string>& problems) const {
    const std::string& name = state_names_[index];
    if (!tensor.defined()) {
      problems.push_back(name + " (undefined tensor)");
    } else if (tensor.sizes() != at::IntArrayRef(expected_shapes_[index])) {
      problems.push_back(name + " (expected shape " + format_shape(expected_shapes_[index]) + ", got " +
                         format_shape(tensor.sizes()) + ")");
    } else if (tensor.scalar_type() != expected_dtypes_[index]) {
      problems.push_back(name + " (expected dtype " + c10::toString(expected_dtypes_[index]) + ", got " +
                         c10::toString(tensor.scalar_type()) + ")");
    }
  }

  /// Copies validated tensors (one per weight, state_names() order) into the spare replica; publishes it.
  void apply(const std::vector<const at::Tensor*>& new_state, std::int64_t version) {
    replicas_.write([&](PolicyReplica& replica) {
      const c10::NoGradGuard no_grad;  // the parameters are autograd leaves
      for (std::size_t i = 0; i < new_state.size(); ++i) replica.state[i].copy_(*new_state[i]);
      if (device_.type() != c10::DeviceType::CPU) {
        // Copies on an accelerator are asynchronous and readers may use other streams: finish them
        // before the replica becomes visible.
        c10::impl::VirtualGuardImpl(device_.type()).synchronizeDevice(device_.index());
      }
      replica.version = version;
    });
  }

  c10::Device device_;
  LeftRight<PolicyReplica> replicas_;
  std::vector<std::string> state_names_;
  std::unordered_map<std::string, std::size_t> state_index_;
  std::vector<std::vector<std::int64_t>> expected_shapes_;
  std::vector<c10::ScalarType> expected_dtypes_;
};

Policy::Policy(const std::string& archive, c10::Device device, std::int64_t initial_version)
    : impl_(std::make_unique<Impl>(archive, device, initial_version)) {}

Policy::~Policy() = default;

PolicyOutput Policy::forward(const TensorMap& obs, const at::Tensor& rnn_states, bool deterministic) const {
  return impl_->run(impl_->make_inputs(obs, rnn_states, deterministic));
}

void Policy::update_weights(const TensorMap& state, std::int64_t version) {
  const std::size_t num_weights = impl_->state_names_.size();
  std::vector<const at::Tensor*> ordered(num_weights, nullptr);
  std::vector<std::string> unexpected;
  std::vector<std::string> mismatched;
  for (const auto& [name, tensor] : state) {
    const auto found = impl_->state_index_.find(name);
    if (found == impl_->state_index_.end()) {
      unexpected.push_back(name);
      continue;
    }
    ordered[found->second] = &tensor;
    impl_->check_weight(found->second, tensor, mismatched);
  }
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < num_weights; ++i) {
    if (ordered[i] == nullptr) missing.push_back(impl_->state_names_[i]);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string message =
        "Policy.update_weights: the state does not match the policy's parameters and buffers; nothing was "
        "applied.";
    if (!missing.empty()) message += " Missing: " + join(missing) + ".";
    if (!unexpected.empty()) message += " Unexpected: " + join(unexpected) + ".";
    if (!mismatched.empty()) message += " Mismatched: " + join(mismatched) + ".";
    throw std::invalid_argument(message);
  }
  impl_->apply(ordered, version);
}

void Policy::update_weights_list(const std::vector<at::Tensor>& state, std::int64_t version) {
  const std::size_t num_weights = impl_->state_names_.size();
  if (state.size() != num_weights) {
    throw std::invalid_argument("Policy.update_weights_list: expected " + std::to_string(num_weights) +
                                " tensors in state_names() order, got " + std::to_string(state.size()) +
                                "; nothing was applied.");
  }
  std::vector<const at::Tensor*> ordered(num_weights);
  std::vector<std::string> mismatched;
  for (std::size_t i = 0; i < num_weights; ++i) {
    ordered[i] = &state[i];
    impl_->check_weight(i, state[i], mismatched);
  }
  if (!mismatched.empty()) {
    throw std::invalid_argument("Policy.update_weights_list: mismatched tensors (by state_names() position): " +
                                join(mismatched) + "; nothing was applied.");
  }
  impl_->apply(ordered, version);
}

std::int64_t Policy::version() const {
  return impl_->replicas_.read([](const PolicyReplica& replica) { return replica.version; });
}

const std::vector<std::string>& Policy::state_names() const { return impl_->state_names_; }

c10::Device Policy::device() const { return impl_->device_; }

void Policy::warmup(const TensorMap& obs, const at::Tensor& rnn_states, int iterations) const {
  const c10::NoGradGuard no_grad;
  // Both branches of `deterministic` are profiled, on both replicas: each has its own executor.
  const std::vector<c10::IValue> stochastic = impl_->make_inputs(obs, rnn_states, false);
  const std::vector<c10::IValue> deterministic = impl_->make_inputs(obs, rnn_states, true);
  impl_->replicas_.read_all([&](const PolicyReplica& replica) {
    for (int i = 0; i < iterations; ++i) {
      (void)replica.forward_method(stochastic);
      (void)replica.forward_method(deterministic);
    }
  });
}

double Policy::benchmark(const TensorMap& obs, const at::Tensor& rnn_states, int iterations,
                         bool deterministic) const {
  if (iterations <= 0) throw std::invalid_argument("Policy.benchmark: iterations must be positive");
  TensorMap obs_on_device;
  obs_on_device.reserve(obs.size());
  for (const auto& [name, tensor] : obs) obs_on_device.insert_or_assign(name, on_device(tensor, impl_->device_));
  const at::Tensor rnn_states_on_device = on_device(rnn_states, impl_->device_);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) (void)forward(obs_on_device, rnn_states_on_device, deterministic);
  const std::chrono::duration<double, std::micro> elapsed = std::chrono::steady_clock::now() - start;
  return elapsed.count() / iterations;
}

}  // namespace pysf::inference
