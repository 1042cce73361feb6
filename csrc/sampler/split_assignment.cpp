#include "sampler/split_assignment.h"

#include <stdexcept>

#include "envs/rng.h"

namespace pysf::sampler {
namespace {

// The warm-up actions' streams derive from the seed through this constant, so they are unrelated to the
// envs' own streams (which derive from the seed directly).
constexpr std::uint64_t kWarmUpStream = 0xDEC0'0000'0000'0001ULL;
// Likewise for the streams that redraw the agent -> policy mapping (one per split).
constexpr std::uint64_t kPolicyMappingStream = 0xDEC0'0000'0000'0002ULL;

}  // namespace

SplitAssignment assign_split(const AssignmentRules& rules, int split_id, int index_in_worker) {
  if (rules.envs_per_split < 1) throw std::invalid_argument("assign_split: envs_per_split must be >= 1");
  if (rules.agents_per_env < 1) throw std::invalid_argument("assign_split: agents_per_env must be >= 1");
  if (split_id < 0 || index_in_worker < 0) throw std::invalid_argument("assign_split: negative split index");
  if (rules.num_policies < 1) throw std::invalid_argument("assign_split: num_policies must be >= 1");
  if (rules.policy_resample_episodes < 0) {
    throw std::invalid_argument("assign_split: policy_resample_episodes must be >= 0");
  }
  SplitAssignment assignment;
  assignment.split_id = split_id;
  assignment.index_in_worker = index_in_worker;
  assignment.first_env_id = static_cast<std::int64_t>(split_id) * rules.envs_per_split;
  assignment.agents_per_env = rules.agents_per_env;
  assignment.num_policies = rules.num_policies;
  assignment.mix_policies_in_one_env = rules.mix_policies_in_one_env;
  // One policy: nothing to redraw (and the block's policy ids are then written once per block).
  assignment.policy_resample_episodes = rules.num_policies > 1 ? rules.policy_resample_episodes : 0;
  assignment.policy_mapping_seed =
      envs::derive_env_seed(envs::derive_env_seed(rules.seed, kPolicyMappingStream), static_cast<std::uint64_t>(split_id));
  const auto envs = static_cast<std::size_t>(rules.envs_per_split);
  assignment.env_seeds.resize(envs);
  assignment.warm_up_steps.resize(envs);
  assignment.warm_up_seeds.resize(envs);
  assignment.policy_ids.resize(envs * static_cast<std::size_t>(rules.agents_per_env));
  for (std::size_t row = 0; row < assignment.policy_ids.size(); ++row) {
    const auto row_id = static_cast<std::int64_t>(row);
    const std::int64_t unit = rules.mix_policies_in_one_env
                                  ? assignment.first_env_id * rules.agents_per_env + row_id
                                  : assignment.env_of_row(row_id);
    assignment.policy_ids[row] = static_cast<std::int32_t>(unit % rules.num_policies);
  }
  const std::uint64_t warm_up_base = envs::derive_env_seed(rules.seed, kWarmUpStream);
  for (std::size_t i = 0; i < envs; ++i) {
    const auto env_id = static_cast<std::uint64_t>(assignment.first_env_id) + i;
    const auto index_among_worker_envs = static_cast<std::int64_t>(index_in_worker) * rules.envs_per_split +
                                         static_cast<std::int64_t>(i);
    assignment.env_seeds[i] = envs::derive_env_seed(rules.seed, env_id);
    assignment.warm_up_steps[i] = rules.warm_up_steps_per_index * index_among_worker_envs;
    assignment.warm_up_seeds[i] = envs::derive_env_seed(warm_up_base, env_id);
  }
  return assignment;
}

}  // namespace pysf::sampler
