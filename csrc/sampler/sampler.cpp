#include "sampler/sampler.h"

#include <chrono>
#include <stdexcept>
#include <utility>

#include "envs/registry.h"
#include "sampler/native_runner.h"
#include "sampler/remote_worker.h"

namespace pysf::sampler {

Sampler::Sampler(SamplerConfig config, buffers::TrajectoryBuffers buffers,
                 std::vector<std::shared_ptr<inference::PolicyRunner>> policies)
    : config_(std::move(config)),
      buffers_(std::move(buffers)),
      policies_(std::move(policies)),
      completed_blocks_(static_cast<std::size_t>(std::max<std::int64_t>(1, buffers_.rewards.defined() ? buffers_.rewards.size(0) : 1))) {
  buffers_.validate();
  if (policies_.empty()) throw std::invalid_argument("the sampler needs at least one policy");
  for (const auto& policy : policies_) {
    if (!policy) throw std::invalid_argument("the sampler was given a null policy");
  }
  if (config_.worker_num_splits < 1) throw std::invalid_argument("worker_num_splits must be >= 1");
  if (config_.agents_per_env < 1 || buffers_.block_rows % config_.agents_per_env != 0) {
    throw std::invalid_argument("the trajectory block rows (" + std::to_string(buffers_.block_rows) +
                                ") must be a whole number of envs of agents_per_env (" +
                                std::to_string(config_.agents_per_env) + ") agents");
  }
  if (!config_.native_env_name.empty()) {
    if (config_.num_native_workers < 1 || config_.envs_per_native_worker < 1) {
      throw std::invalid_argument("native sampling needs num_workers >= 1 and num_envs_per_worker >= 1");
    }
    if (config_.envs_per_native_worker % config_.worker_num_splits != 0 ||
        config_.envs_per_native_worker / config_.worker_num_splits * config_.agents_per_env != buffers_.block_rows) {
      throw std::invalid_argument("num_envs_per_worker (" + std::to_string(config_.envs_per_native_worker) +
                                  ") x agents_per_env (" + std::to_string(config_.agents_per_env) +
                                  ") must equal worker_num_splits (" + std::to_string(config_.worker_num_splits) +
                                  ") x the trajectory block rows (" + std::to_string(buffers_.block_rows) + ")");
    }
  }
  outstanding_.assign(static_cast<std::size_t>(buffers_.num_blocks()), 0);
}

Sampler::~Sampler() { stop(); }

int Sampler::num_splits() const {
  const int native = config_.native_env_name.empty() ? 0 : config_.num_native_workers * config_.worker_num_splits;
  return native + num_remote_splits_;
}

AssignmentRules Sampler::assignment_rules() const {
  return AssignmentRules{
      .seed = config_.seed,
      .envs_per_split = buffers_.block_rows / config_.agents_per_env,
      .agents_per_env = config_.agents_per_env,
      .warm_up_steps_per_index = config_.decorrelate_envs_on_one_worker ? buffers_.rollout() : 0,
      .num_policies = static_cast<std::int32_t>(policies_.size()),
      .mix_policies_in_one_env = config_.mix_policies_in_one_env,
      .policy_resample_episodes = config_.policy_resample_episodes};
}

std::vector<SplitAssignment> Sampler::worker_assignments(int first_split, int count) const {
  const AssignmentRules rules = assignment_rules();
  std::vector<SplitAssignment> assignments;
  for (int i = 0; i < count; ++i) assignments.push_back(assign_split(rules, first_split + i, i));
  return assignments;
}

std::vector<SplitAssignment> Sampler::next_remote_assignments(int num_splits) const {
  return worker_assignments(this->num_splits(), num_splits);
}

std::vector<SplitAssignment> Sampler::add_remote_worker(WorkerChannels channels, int num_splits,
                                                        const std::string& description) {
  if (started_.load()) throw std::logic_error("add_remote_worker must be called before start()");
  if (num_splits < 1) throw std::invalid_argument("a worker needs at least one split");
  // Validates the mailbox now, where the caller can still react, rather than in start().
  [[maybe_unused]] const MailboxWords check(channels.mailbox, MailboxLayout(num_splits, buffers_.block_rows));
  std::vector<SplitAssignment> assignments = next_remote_assignments(num_splits);
  pending_remote_.push_back(PendingRemoteWorker{std::move(channels), assignments, description});
  num_remote_splits_ += num_splits;
  return assignments;
}

std::vector<std::unique_ptr<RolloutSplit>> Sampler::make_splits(std::vector<SplitAssignment> assignments) {
  std::vector<std::unique_ptr<RolloutSplit>> splits;
  for (auto& assignment : assignments) {
    splits.push_back(std::make_unique<RolloutSplit>(std::move(assignment), buffers_,
                                                    BlockQueues{*free_blocks_, completed_blocks_}, config_.reward_shaping));
  }
  return splits;
}

void Sampler::start() {
  if (started_.exchange(true)) throw std::logic_error("Sampler::start called twice");
  const int total_splits = num_splits();
  if (total_splits == 0) throw std::invalid_argument("the sampler has no env workers");
  if (buffers_.num_blocks() < total_splits) {
    throw std::invalid_argument("the trajectory buffers hold " + std::to_string(buffers_.num_blocks()) +
                                " blocks but there are " + std::to_string(total_splits) +
                                " splits; every split needs a block of its own");
  }
  free_blocks_ = std::make_unique<buffers::BlockPool>(buffers_.num_blocks(), total_splits);
  free_blocks_->fill();

  InferenceServerConfig server_config = config_.inference;
  server_config.num_splits = total_splits;
  auto on_error = [this](const std::string& message) { fail(message); };
  server_ = std::make_unique<InferenceServer>(
      server_config, policies_, buffers_,
      [this](const InferenceRequest& r) { on_actions_ready(r); }, on_error);

  split_owners_.assign(static_cast<std::size_t>(total_splits), SplitOwner{});
  int next_split = 0;
  if (!config_.native_env_name.empty()) {
    for (int worker = 0; worker < config_.num_native_workers; ++worker) {
      std::vector<SplitAssignment> assignments = worker_assignments(next_split, config_.worker_num_splits);
      std::vector<std::unique_ptr<envs::VectorEnv>> worker_envs;
      for (const SplitAssignment& assignment : assignments) {
        // One slot per row; the seed given here is replaced by the assignment's per-env seeds (NativeRunner).
        worker_envs.push_back(config_.make_env ? config_.make_env(assignment)
                                               : envs::make_vector_env(config_.native_env_name,
                                                                       static_cast<int>(assignment.num_rows()), 0));
        if (worker_envs.back()->spec().num_agents != config_.agents_per_env) {
          throw std::invalid_argument(worker_envs.back()->spec().name + " has " +
                                      std::to_string(worker_envs.back()->spec().num_agents) +
                                      " agents per env, but the sampler was configured with agents_per_env = " +
                                      std::to_string(config_.agents_per_env));
        }
      }
      auto runner = std::make_unique<NativeRunner>(worker, make_splits(std::move(assignments)), std::move(worker_envs),
                                                   buffers_, *server_, episode_stats_, on_error);
      for (int s = 0; s < config_.worker_num_splits; ++s) {
        split_owners_[static_cast<std::size_t>(next_split + s)] = SplitOwner{runner.get(), nullptr, s};
      }
      next_split += config_.worker_num_splits;
      native_runners_.push_back(std::move(runner));
    }
  }
  for (auto& pending : pending_remote_) {
    const int worker_splits = static_cast<int>(pending.assignments.size());
    auto worker = std::make_unique<RemoteWorker>(pending.description, std::move(pending.channels),
                                                 make_splits(std::move(pending.assignments)), *server_, episode_stats_,
                                                 on_error, config_.stall_limits);
    for (int s = 0; s < worker_splits; ++s) {
      split_owners_[static_cast<std::size_t>(next_split + s)] = SplitOwner{nullptr, worker.get(), s};
    }
    next_split += worker_splits;
    remote_workers_.push_back(std::move(worker));
  }
  pending_remote_.clear();

  server_->start();
  for (auto& runner : native_runners_) runner->start();
  for (auto& worker : remote_workers_) worker->start();
}

void Sampler::on_actions_ready(const InferenceRequest& request) {
  const SplitOwner& owner = split_owners_[static_cast<std::size_t>(request.split)];
  if (owner.native != nullptr) {
    owner.native->on_actions_ready(owner.local_index);
  } else {
    owner.remote->on_actions_ready(owner.local_index, request);
  }
}

void Sampler::request_stop_all() {
  if (free_blocks_) free_blocks_->close();
  completed_blocks_.close();
  if (server_) server_->request_stop();
  for (auto& runner : native_runners_) runner->request_stop();
  for (auto& worker : remote_workers_) worker->request_stop();
}

void Sampler::stop() {
  if (stopped_.exchange(true)) return;
  request_stop_all();
  for (auto& runner : native_runners_) runner->stop();
  for (auto& worker : remote_workers_) worker->stop();
  if (server_) server_->stop();
  pending_remote_.clear();  // registered but never started: closes their channels
}

void Sampler::fail(const std::string& message) {
  {
    const std::lock_guard lock(error_mutex_);
    if (!error_) error_ = message;
  }
  request_stop_all();
}

std::optional<std::string> Sampler::error() const {
  const std::lock_guard lock(error_mutex_);
  return error_;
}

void Sampler::check() const {
  if (auto message = error()) throw std::runtime_error("sampling failed: " + *message);
}

std::vector<std::int64_t> Sampler::get_trajectories(int num_blocks, double timeout_seconds) {
  check();
  std::vector<std::int64_t> blocks;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (static_cast<int>(blocks.size()) < num_blocks) {
    const auto remaining = deadline - std::chrono::steady_clock::now();
    if (remaining <= std::chrono::steady_clock::duration::zero()) break;
    std::optional<std::int64_t> block = completed_blocks_.pop_for(remaining);
    if (!block) {
      if (completed_blocks_.closed()) break;
      continue;
    }
    blocks.push_back(*block);
  }
  check();
  {
    const std::lock_guard lock(outstanding_mutex_);
    for (std::int64_t block : blocks) outstanding_[static_cast<std::size_t>(block)] = 1;
  }
  return blocks;
}

void Sampler::release(const std::vector<std::int64_t>& blocks) {
  {
    const std::lock_guard lock(outstanding_mutex_);
    for (std::int64_t block : blocks) {
      if (block < 0 || block >= static_cast<std::int64_t>(outstanding_.size()) || !outstanding_[static_cast<std::size_t>(block)]) {
        throw std::invalid_argument("release: block " + std::to_string(block) +
                                    " is not held by the consumer (released twice, or never received)");
      }
      outstanding_[static_cast<std::size_t>(block)] = 0;
    }
  }
  for (std::int64_t block : blocks) free_blocks_->release(block);
}

std::int64_t Sampler::rows_served() const { return server_ ? server_->rows_served() : 0; }

std::vector<std::int64_t> Sampler::rows_served_by_policy() const {
  return server_ ? server_->rows_served_by_policy() : std::vector<std::int64_t>(policies_.size(), 0);
}

std::vector<int> Sampler::stalled_remote_workers() const {
  std::vector<int> stalled;
  for (std::size_t i = 0; i < remote_workers_.size(); ++i) {
    if (remote_workers_[i]->stalled()) stalled.push_back(static_cast<int>(i));
  }
  return stalled;
}

}  // namespace pysf::sampler
