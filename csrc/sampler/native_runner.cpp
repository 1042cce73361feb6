#include "sampler/native_runner.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <utility>

#include "envs/rng.h"

namespace pysf::sampler {

NativeRunner::NativeRunner(int worker_index, std::vector<std::unique_ptr<RolloutSplit>> splits,
                           std::vector<std::unique_ptr<envs::VectorEnv>> envs, const buffers::TrajectoryBuffers& buffers,
                           InferenceServer& server, EpisodeStatsSink& episode_stats, ErrorHandler on_error)
    : worker_index_(worker_index),
      splits_(std::move(splits)),
      envs_(std::move(envs)),
      buffers_(buffers),
      server_(server),
      episode_stats_(episode_stats),
      on_error_(std::move(on_error)),
      ready_(splits_.size(), 0) {
  if (splits_.size() != envs_.size()) throw std::invalid_argument("NativeRunner: one VectorEnv per split");
  for (std::size_t i = 0; i < splits_.size(); ++i) envs_[i]->seed(slot_seeds(splits_[i]->assignment()));
  const std::int64_t rows = buffers_.block_rows;
  episode_return_ = at::zeros({rows}, at::kFloat);
  episode_length_ = at::zeros({rows}, at::kInt);
}

NativeRunner::~NativeRunner() { stop(); }

void NativeRunner::start() { thread_ = std::thread([this] { thread_main(); }); }

void NativeRunner::request_stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  actions_ready_.notify_all();
}

void NativeRunner::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void NativeRunner::on_actions_ready(int local_index) {
  {
    const std::lock_guard lock(mutex_);
    ready_[static_cast<std::size_t>(local_index)] = 1;
  }
  actions_ready_.notify_all();
}

bool NativeRunner::stop_requested() {
  const std::lock_guard lock(mutex_);
  return stopping_;
}

bool NativeRunner::has_warm_up(std::size_t local_index) const {
  const auto& steps = splits_[local_index]->assignment().warm_up_steps;
  return std::any_of(steps.begin(), steps.end(), [](std::int64_t n) { return n > 0; });
}

std::vector<std::uint64_t> NativeRunner::slot_seeds(const SplitAssignment& assignment) {
  std::vector<std::uint64_t> seeds(static_cast<std::size_t>(assignment.num_rows()));
  for (std::int64_t row = 0; row < assignment.num_rows(); ++row) {
    seeds[static_cast<std::size_t>(row)] = assignment.env_seeds[static_cast<std::size_t>(row / assignment.agents_per_env)];
  }
  return seeds;
}

bool NativeRunner::decorrelate(std::size_t local_index, const at::Tensor& obs) {
  envs::VectorEnv& env = *envs_[local_index];
  const SplitAssignment& assignment = splits_[local_index]->assignment();
  for (std::int64_t e = 0; e < assignment.num_envs(); ++e) {
    // One env's warm-up takes at most rollout * envs_per_worker steps: microseconds to milliseconds.
    if (stop_requested()) return false;
    const auto i = static_cast<std::size_t>(e);
    envs::Rng action_rng(assignment.warm_up_seeds[i]);
    env.random_steps(static_cast<int>(e * assignment.agents_per_env), assignment.warm_up_steps[i], action_rng);
  }
  env.observe(obs);
  return true;
}

bool NativeRunner::wait_for_actions(int local_index) {
  std::unique_lock lock(mutex_);
  auto& ready = ready_[static_cast<std::size_t>(local_index)];
  actions_ready_.wait(lock, [&] { return stopping_ || ready != 0; });
  if (stopping_) return false;
  ready = 0;
  return true;
}

void NativeRunner::step_split(int local_index) {
  RolloutSplit& split = *splits_[static_cast<std::size_t>(local_index)];
  envs::VectorEnv& env = *envs_[static_cast<std::size_t>(local_index)];
  const std::int64_t step = split.step();
  const std::string& obs_key = buffers_.obs.begin()->first;
  envs::StepOutput out;
  out.obs = split.at_step(buffers_.obs.at(obs_key), step + 1);
  out.rewards = split.at_step(buffers_.rewards, step);
  out.terminated = split.at_step(buffers_.dones, step);
  out.truncated = split.at_step(buffers_.time_outs, step);
  out.episode_return = episode_return_;
  out.episode_length = episode_length_;
  env.step(split.at_step(buffers_.actions, step), out);

  // Finished episodes: terminated or truncated (read before finish_step merges the two flags).
  const bool* terminated = out.terminated.data_ptr<bool>();
  const bool* truncated = out.truncated.data_ptr<bool>();
  const std::int64_t terminated_stride = out.terminated.stride(0);
  const std::int64_t truncated_stride = out.truncated.stride(0);
  const float* returns = episode_return_.data_ptr<float>();
  const std::int32_t* lengths = episode_length_.data_ptr<std::int32_t>();
  const std::int64_t rows = split.rows();
  for (std::int64_t i = 0; i < rows; ++i) {
    if (terminated[i * terminated_stride] || truncated[i * truncated_stride]) {
      episode_stats_.push(episode_of(split, i, returns[i], lengths[i]));
    }
  }
}

void NativeRunner::thread_main() {
  try {
    const c10::InferenceMode inference_mode;
    const std::string& obs_key = buffers_.obs.begin()->first;
    for (std::size_t i = 0; i < splits_.size(); ++i) {
      RolloutSplit& split = *splits_[i];
      if (!split.acquire_block()) return;
      envs::StepOutput out;
      out.obs = split.at_step(buffers_.obs.at(obs_key), 0);
      envs_[i]->reset(out);
      if (has_warm_up(i) && !decorrelate(i, out.obs)) return;
      if (!server_.submit(split.request())) return;
    }
    // Round-robin over the splits: while inference runs for one, the others step. A split that
    // completed its block waits for a new one only when its turn comes again, after the other splits
    // had the chance to complete theirs.
    for (;;) {
      for (std::size_t i = 0; i < splits_.size(); ++i) {
        RolloutSplit& split = *splits_[i];
        if (split.needs_block()) {
          if (!split.acquire_block()) return;
        } else {
          const int local_index = static_cast<int>(i);
          if (!wait_for_actions(local_index)) return;
          step_split(local_index);
          if (!split.finish_step()) return;
          if (split.needs_block()) continue;
        }
        if (!server_.submit(split.request())) return;
      }
    }
  } catch (const c10::Error& error) {
    on_error_("native env worker " + std::to_string(worker_index_) + ": " + error.what_without_backtrace());
  } catch (const std::exception& error) {
    on_error_("native env worker " + std::to_string(worker_index_) + ": " + error.what());
  }
}

}  // namespace pysf::sampler
