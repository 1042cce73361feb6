// InferenceServer: inference threads that batch requests from many splits into one policy forward.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "buffers/bounded_queue.h"
#include "buffers/trajectory_buffers.h"
#include "sampler/inference_request.h"
#include "inference/policy_runner.h"

namespace pysf::sampler {

struct InferenceServerConfig {
  int num_threads = 1;                 // --policy_workers_per_policy
  std::int64_t max_batch_rows = 1 << 20;  // a batch never exceeds this many env rows (whole requests)
  bool deterministic_actions = false;  // argmax instead of sampling (evaluation)
  // Serve requests strictly in round-robin split order, one split per forward: with one thread this
  // makes sampling reproducible (the RNG is consumed in a fixed order), at the cost of batching.
  bool serial_order = false;
  int num_splits = 0;                  // total splits (capacity of the request queue)
};

/// Dynamic batching: a thread waits for one request, then takes every other request already queued
/// (up to `max_batch_rows` rows), so batches grow with load without waiting on a deadline. For each
/// batch it gathers the observations and RNN states of every request from the trajectory buffers,
/// runs each policy once on the rows that act for it, copies each policy output that kTrajectoryFields
/// maps to a buffer into its step (t, or t+1 for the new RNN states) and the acting weights' version into
/// policy_version, then calls `on_actions_ready(request)` per request.
///
/// Several policies: `policies[p]` acts for the rows whose policy_id at the request's step is p (the rollout
/// split writes its current agent -> policy mapping there before it submits the request; split_assignment.h),
/// so agents of different policies can share a request, an env and a vector env, and the mapping may change
/// between steps. A batch whose rows all act for one policy costs what one policy costs.
///
/// Threads start in `start()` and are joined by `stop()` (also from the destructor); `stop()` returns
/// promptly even while threads wait for requests. A policy error is reported through `on_error` and
/// stops the failing thread. `submit` is thread-safe.
class InferenceServer {
 public:
  using ActionsReady = std::function<void(const InferenceRequest&)>;
  using ErrorHandler = std::function<void(const std::string&)>;

  /// With one policy every row acts for it (policy_id is not read).
  InferenceServer(InferenceServerConfig config, std::vector<std::shared_ptr<inference::PolicyRunner>> policies,
                  buffers::TrajectoryBuffers buffers, ActionsReady on_actions_ready, ErrorHandler on_error);
  ~InferenceServer();
  InferenceServer(const InferenceServer&) = delete;
  InferenceServer& operator=(const InferenceServer&) = delete;

  void start();
  /// Closes the request queue so the threads finish their batch and exit; does not wait for them.
  void request_stop();
  /// request_stop() and join the threads.
  void stop();

  /// Queue a request; returns false once the server is stopping.
  bool submit(const InferenceRequest& request);

  /// Batches run and rows served so far (for throughput statistics), in all and by policy.
  [[nodiscard]] std::int64_t batches_served() const { return batches_.load(); }
  [[nodiscard]] std::int64_t rows_served() const { return rows_.load(); }
  [[nodiscard]] std::vector<std::int64_t> rows_served_by_policy() const;

 private:
  void thread_main();
  void collect_batch(std::vector<InferenceRequest>& batch);
  void collect_serial(std::vector<InferenceRequest>& batch);
  void run_batch(const std::vector<InferenceRequest>& batch);
  /// The batch's outputs (by output name), each row from the policy it acts for, and the version of the weights
  /// that produced them: one for the whole batch, or one per row ([rows] int32) when several policies acted.
  struct BatchOutput {
    core::TensorMap outputs;
    std::int64_t policy_version = 0;
    at::Tensor row_policy_versions;  // undefined when one policy acted for every row
  };
  BatchOutput forward_by_policy(const std::vector<InferenceRequest>& batch, const core::TensorMap& obs,
                                const at::Tensor& rnn_states);

  const InferenceServerConfig config_;
  std::vector<std::shared_ptr<inference::PolicyRunner>> policies_;
  const buffers::TrajectoryBuffers buffers_;
  // The buffers that policy outputs go to (from kTrajectoryFields).
  struct OutputSlot {
    const at::Tensor* buffer;
    const char* output;
    std::int64_t step_offset;
  };
  std::vector<OutputSlot> output_slots_;
  ActionsReady on_actions_ready_;
  ErrorHandler on_error_;
  buffers::BoundedQueue<InferenceRequest> requests_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> batches_{0};
  std::atomic<std::int64_t> rows_{0};
  std::unique_ptr<std::atomic<std::int64_t>[]> policy_rows_;  // one counter per policy
  // serial_order bookkeeping (only with one thread)
  int next_split_ = 0;
  std::vector<InferenceRequest> parked_;
};

}  // namespace pysf::sampler
