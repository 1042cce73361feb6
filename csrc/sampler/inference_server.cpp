#include "sampler/inference_server.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace pysf::sampler {

using core::TensorMap;
using inference::PolicyOutput;

using buffers::block_step;

InferenceServer::InferenceServer(InferenceServerConfig config,
                                 std::vector<std::shared_ptr<inference::PolicyRunner>> policies,
                                 buffers::TrajectoryBuffers buffers, ActionsReady on_actions_ready,
                                 ErrorHandler on_error)
    : config_(config),
      policies_(std::move(policies)),
      buffers_(std::move(buffers)),
      on_actions_ready_(std::move(on_actions_ready)),
      on_error_(std::move(on_error)),
      // Each split has at most one request in flight, so this capacity never blocks a producer.
      requests_(static_cast<std::size_t>(std::max(1, config.num_splits))) {
  for (const buffers::TrajectoryField& field : buffers::kTrajectoryFields) {
    if (field.policy_output != nullptr) {
      output_slots_.push_back(OutputSlot{&(buffers_.*field.member), field.policy_output, field.policy_output_step});
    }
  }
  if (config_.num_threads < 1) throw std::invalid_argument("InferenceServer: num_threads must be >= 1");
  if (policies_.empty()) throw std::invalid_argument("InferenceServer: no policy");
  policy_rows_ = std::make_unique<std::atomic<std::int64_t>[]>(policies_.size());
  if (config_.serial_order && config_.num_threads != 1) {
    throw std::invalid_argument("InferenceServer: serial_order needs exactly one inference thread");
  }
}

InferenceServer::~InferenceServer() { stop(); }

void InferenceServer::start() {
  for (int i = 0; i < config_.num_threads; ++i) threads_.emplace_back([this] { thread_main(); });
}

void InferenceServer::request_stop() {
  stopping_.store(true);
  requests_.close();
}

void InferenceServer::stop() {
  request_stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

bool InferenceServer::submit(const InferenceRequest& request) { return requests_.push(request); }

void InferenceServer::collect_batch(std::vector<InferenceRequest>& batch) {
  std::optional<InferenceRequest> first = requests_.pop();
  if (!first) return;
  batch.push_back(*first);
  const std::int64_t max_requests = std::max<std::int64_t>(1, config_.max_batch_rows / buffers_.block_rows);
  requests_.pop_available(batch, static_cast<std::size_t>(max_requests - 1));
}

void InferenceServer::collect_serial(std::vector<InferenceRequest>& batch) {
  // Requests are served in split order 0, 1, ..., num_splits-1, 0, ...; early arrivals wait parked.
  for (;;) {
    auto parked = std::find_if(parked_.begin(), parked_.end(),
                               [&](const InferenceRequest& r) { return r.split == next_split_; });
    if (parked != parked_.end()) {
      batch.push_back(*parked);
      parked_.erase(parked);
      next_split_ = (next_split_ + 1) % config_.num_splits;
      return;
    }
    std::optional<InferenceRequest> request = requests_.pop();
    if (!request) return;
    parked_.push_back(*request);
  }
}

void InferenceServer::run_batch(const std::vector<InferenceRequest>& batch) {
  // InferenceMode, not just NoGrad: ~20 us less per batch of small strided gathers/scatters into the
  // buffers (measured at batch 1-64). In-place writes into the (normal) buffer tensors stay allowed.
  const c10::InferenceMode inference_mode;
  const std::int64_t rows = buffers_.block_rows;
  const bool single = batch.size() == 1;

  auto gather = [&](const at::Tensor& tensor) {
    if (single) return block_step(tensor, buffers_, batch[0].block, batch[0].step);
    std::vector<at::Tensor> parts;
    parts.reserve(batch.size());
    for (const auto& request : batch) parts.push_back(block_step(tensor, buffers_, request.block, request.step));
    return at::cat(parts, 0);
  };

  TensorMap obs;
  obs.reserve(buffers_.obs.size());
  for (const auto& [key, tensor] : buffers_.obs) obs.insert_or_assign(key, gather(tensor));
  const at::Tensor rnn_states = gather(buffers_.rnn_states);

  const BatchOutput output = forward_by_policy(batch, obs, rnn_states);

  for (const OutputSlot& slot : output_slots_) {
    const at::Tensor& produced = output.outputs.at(slot.output);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const InferenceRequest& request = batch[i];
      at::Tensor destination = block_step(*slot.buffer, buffers_, request.block, request.step + slot.step_offset);
      // reshape: discrete actions come as [B], their buffer rows are [B, 1]
      destination.copy_(produced.narrow(0, static_cast<std::int64_t>(i) * rows, rows).reshape(destination.sizes()));
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    at::Tensor destination = block_step(buffers_.policy_version, buffers_, batch[i].block, batch[i].step);
    if (output.row_policy_versions.defined()) {
      destination.copy_(output.row_policy_versions.narrow(0, static_cast<std::int64_t>(i) * rows, rows));
    } else {
      destination.fill_(output.policy_version);
    }
  }
  batches_.fetch_add(1);
  rows_.fetch_add(static_cast<std::int64_t>(batch.size()) * rows);
  for (const auto& request : batch) on_actions_ready_(request);
}

InferenceServer::BatchOutput InferenceServer::forward_by_policy(const std::vector<InferenceRequest>& batch,
                                                                const TensorMap& obs, const at::Tensor& rnn_states) {
  // Which policy each row acts for at its step (not read with a single policy).
  at::Tensor row_policies;
  std::optional<std::int32_t> single = 0;
  if (policies_.size() > 1) {
    std::vector<at::Tensor> parts;
    parts.reserve(batch.size());
    for (const auto& request : batch) parts.push_back(block_step(buffers_.policy_id, buffers_, request.block, request.step));
    row_policies = at::cat(parts, 0).to(at::kLong);
    const auto [min_tensor, max_tensor] = at::aminmax(row_policies);
    const auto lowest = min_tensor.item<std::int64_t>();
    const auto highest = max_tensor.item<std::int64_t>();
    if (lowest < 0 || highest >= static_cast<std::int64_t>(policies_.size())) {
      throw std::invalid_argument("InferenceServer: a row acts for policy " + std::to_string(lowest < 0 ? lowest : highest) +
                                  ", which is not one of the " + std::to_string(policies_.size()) + " policies");
    }
    single = lowest == highest ? std::optional<std::int32_t>(static_cast<std::int32_t>(lowest)) : std::nullopt;
  }
  if (single) {
    PolicyOutput output = policies_[static_cast<std::size_t>(*single)]->forward(obs, rnn_states, config_.deterministic_actions);
    policy_rows_[static_cast<std::size_t>(*single)].fetch_add(rnn_states.size(0));
    return BatchOutput{std::move(output.outputs), output.policy_version, at::Tensor()};
  }

  const std::int64_t total_rows = row_policies.size(0);
  TensorMap merged;
  at::Tensor versions = at::empty({total_rows}, at::kInt);
  for (std::size_t p = 0; p < policies_.size(); ++p) {
    const at::Tensor rows = at::nonzero(row_policies == static_cast<std::int64_t>(p)).squeeze(1);
    if (rows.numel() == 0) continue;
    TensorMap policy_obs;
    policy_obs.reserve(obs.size());
    for (const auto& [key, tensor] : obs) policy_obs.insert_or_assign(key, tensor.index_select(0, rows));
    PolicyOutput output = policies_[p]->forward(policy_obs, rnn_states.index_select(0, rows), config_.deterministic_actions);
    for (const auto& [name, produced] : output.outputs) {
      if (!merged.contains(name)) {
        std::vector<std::int64_t> shape(produced.sizes().begin(), produced.sizes().end());
        shape[0] = total_rows;
        merged.insert_or_assign(name, at::empty(shape, produced.options()));
      }
      merged.find(name)->index_copy_(0, rows, produced);
    }
    versions.index_fill_(0, rows, output.policy_version);
    policy_rows_[p].fetch_add(rows.numel());
  }
  return BatchOutput{std::move(merged), 0, versions};
}

std::vector<std::int64_t> InferenceServer::rows_served_by_policy() const {
  std::vector<std::int64_t> rows(policies_.size());
  for (std::size_t p = 0; p < rows.size(); ++p) rows[p] = policy_rows_[p].load();
  return rows;
}

void InferenceServer::thread_main() {
  for (const auto& policy : policies_) policy->thread_started();
  std::vector<InferenceRequest> batch;
  try {
    while (!stopping_.load()) {
      batch.clear();
      if (config_.serial_order) {
        collect_serial(batch);
      } else {
        collect_batch(batch);
      }
      if (batch.empty()) break;  // closed
      run_batch(batch);
    }
  } catch (const c10::Error& error) {
    on_error_(std::string("inference failed: ") + error.what_without_backtrace());
  } catch (const std::exception& error) {
    on_error_(std::string("inference failed: ") + error.what());
  }
  for (const auto& policy : policies_) policy->thread_stopping();
}

}  // namespace pysf::sampler
