// PolicyRunner: what an inference thread calls to turn a batch of observations into actions.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>

#include "inference/policy.h"
#include "core/tensor_map.h"

namespace pysf::inference {

/// One batched policy evaluation, as the inference server sees it. Implementations: the native
/// TorchScript `Policy` (below) and, in the bindings, an eager-Python fallback that calls back into
/// the interpreter (--inference_backend=python).
///
/// `forward` may be called concurrently from every inference thread. `thread_started`/`thread_stopping`
/// bracket each inference thread's life (a Python runner keeps a thread state per thread).
class PolicyRunner {
 public:
  virtual ~PolicyRunner() = default;
  virtual PolicyOutput forward(const TensorMap& obs, const at::Tensor& rnn_states, bool deterministic) = 0;
  virtual void thread_started() {}
  virtual void thread_stopping() {}
};

/// Runs a native Policy (shared with whoever publishes its weights).
class NativePolicyRunner final : public PolicyRunner {
 public:
  explicit NativePolicyRunner(std::shared_ptr<const Policy> policy) : policy_(std::move(policy)) {}
  PolicyOutput forward(const TensorMap& obs, const at::Tensor& rnn_states, bool deterministic) override {
    return policy_->forward(obs, rnn_states, deterministic);
  }

 private:
  std::shared_ptr<const Policy> policy_;
};

}  // namespace pysf::inference
