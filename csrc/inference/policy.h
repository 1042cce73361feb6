// Policy: a TorchScript actor-critic that any C++ thread can run, with weights swapped in atomically.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor_map.h"

namespace pysf::inference {

using core::TensorMap;

/// What one Policy::forward call produced.
struct PolicyOutput {
  /// The module's output dict, in the module's order: "values" [B], "action_logits" [B, P],
  /// "actions" ([B] int64 for discrete actions), "log_prob_actions" [B], "new_rnn_states" [B, R].
  TensorMap outputs;
  /// The version of the weights this call actually ran with (see Policy::update_weights).
  std::int64_t policy_version = 0;
};

/// Owns a TorchScript-compiled actor-critic and runs batched inference on it.
///
/// The module contract (checked at construction, std::invalid_argument otherwise):
///   forward(obs: Dict[str, Tensor], rnn_states: Tensor, deterministic: bool) -> Dict[str, Tensor]
/// Its weights are all its parameters and buffers, recursively, named with dotted paths
/// ("encoder.0.weight", ...); that list, in a fixed order, is `state_names()`.
///
/// Thread safety: every const member function may be called concurrently from any number of threads,
/// including while `update_weights`/`update_weights_list` run in another thread. A forward call runs
/// entirely with one consistent set of weights, either the set before an update or the one after it,
/// never a mix, and it never waits for an update to finish: two replicas of the module are kept, and
/// an update writes the one no new forward call uses, then publishes it (see LeftRight). Concurrent
/// updates are serialised. The Policy must outlive every call on it; it starts no threads of its own.
///
/// Outputs are ordinary tensors created under no-grad mode (not inference-mode tensors), so callers
/// may modify them in place or use them in autograd later. They live on `device()`.
class Policy {
 public:
  /// Loads the module twice from `archive` (the bytes of torch.jit.save) onto `device`.
  /// `initial_version` is the version reported for the archive's own weights.
  /// Throws std::invalid_argument if the module breaks the contract above, c10::Error if it cannot be
  /// loaded.
  Policy(const std::string& archive, c10::Device device, std::int64_t initial_version = 0);
  ~Policy();

  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;
  Policy(Policy&&) = delete;
  Policy& operator=(Policy&&) = delete;

  /// Runs the module on one batch. Inputs not on `device()` are copied there first. Runs under
  /// no-grad mode, set for the duration of the call on the calling thread. Thread-safe, never blocks on
  /// an update. Errors raised by the module propagate as c10::Error.
  [[nodiscard]] PolicyOutput forward(const TensorMap& obs, const at::Tensor& rnn_states,
                                     bool deterministic) const;

  /// Replaces every parameter and buffer with `state` (name -> tensor; any device; same shapes and
  /// dtypes) and tags the weights with `version`. Validates first: a missing or unknown name, an
  /// undefined tensor or a shape or dtype mismatch throws std::invalid_argument listing the offending
  /// names, and then nothing is applied. Blocks only while forward calls that began before the previous
  /// update are still running. Forward calls that start after it returns use the new weights.
  void update_weights(const TensorMap& state, std::int64_t version);

  /// Same as update_weights, with the tensors given positionally in `state_names()` order (no name
  /// lookups). A wrong count, undefined tensor or shape/dtype mismatch throws std::invalid_argument.
  void update_weights_list(const std::vector<at::Tensor>& state, std::int64_t version);

  /// The version of the weights that a forward call starting now would use.
  [[nodiscard]] std::int64_t version() const;

  /// Names of all parameters then all buffers, recursive, dotted: the order update_weights_list uses.
  [[nodiscard]] const std::vector<std::string>& state_names() const;

  /// Where the module's weights live and where forward runs.
  [[nodiscard]] c10::Device device() const;

  /// Runs `iterations` forward calls (stochastic and deterministic) on each replica, so that the
  /// TorchScript profiling executor has specialised both before timing-sensitive use (its first 2-3 calls
  /// are slow). Call with inputs shaped like real ones. Thread-safe; it waits for an update in
  /// progress, and updates wait while it runs (forward calls do not).
  void warmup(const TensorMap& obs, const at::Tensor& rnn_states, int iterations = 3) const;

  /// Mean wall time in microseconds of `iterations` forward calls run in a C++ loop on the calling
  /// thread (input moves to the device excluded). Does not warm up; call warmup first.
  [[nodiscard]] double benchmark(const TensorMap& obs, const at::Tensor& rnn_states, int iterations,
                                 bool deterministic = false) const;

 private:
  // The TorchScript types stay out of this header: it is included by many translation units, and
  // torch/script.h is one of the most expensive headers to compile.
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pysf::inference
