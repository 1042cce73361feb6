// SplitAssignment: who the envs of one split are: their global ids, seeds, warm-up and policies.
#pragma once

#include <cstdint>
#include <vector>

namespace pysf::sampler {

/// The rules every split is assigned by (from the Sampler's configuration).
struct AssignmentRules {
  std::uint64_t seed = 0;              ///< --seed (0 when not given: env streams are then fixed by env id, as in SF)
  std::int64_t envs_per_split = 0;     ///< envs per split: the trajectory block rows / agents_per_env
  std::int64_t agents_per_env = 1;     ///< a multi-agent env's num_agents: one trajectory row per agent
  std::int64_t warm_up_steps_per_index = 0;  ///< --decorrelate_envs_on_one_worker: --rollout, else 0
  std::int32_t num_policies = 1;       ///< the policies agents are mapped to (the Sampler's policies)
  bool mix_policies_in_one_env = true;  ///< --pbt_mix_policies_in_one_env: agents of one env may act for different policies
  /// Resample an env's policies at random after this many episodes per agent (0: the mapping is fixed).
  std::int64_t policy_resample_episodes = 0;
};

/// Decided once by the Sampler for each split and handed to whichever runner steps it (a NativeRunner thread
/// or, through WorkerSpec, a Python env worker process), so both paths give an env the same id, seed and
/// warm-up for the same configuration:
///  - env i of the split is global env `first_env_id + i`, with first_env_id = split_id * envs_per_split
///    (splits are numbered in the order the Sampler creates them: native workers', then remote workers');
///    its agents are the block rows i * agents_per_env ... (i + 1) * agents_per_env - 1 (env_of_row);
///  - its seed is envs::derive_env_seed(seed, env id) (native envs: VectorEnv::seed; gymnasium envs: the first
///    reset's seed);
///  - Sample Factory's decorrelation: the env with index k in its worker (counted over the worker's splits)
///    takes warm_up_steps_per_index * k random steps after its first reset, with actions drawn from its own
///    stream warm_up_seeds[i] (unrelated to the env's);
///  - policy_ids[r]: the policy acting for row r (the agent -> policy mapping; with one policy all 0). Agent a
///    of env e acts for policy (e * agents_per_env + a) % num_policies when policies mix in one env, else the
///    whole env for e % num_policies (Sample Factory's fixed mapping of its sync mode, global env index %
///    num_policies, made per agent where its flag allows mixing). That is the mapping a split starts with;
///  - with policy_resample_episodes = K > 0 (Sample Factory's async mode, its AgentPolicyMapping), the split
///    draws an env's policies anew, uniformly (one per agent, or one for the whole env without mixing), each
///    time its agents have finished K * agents_per_env episodes since the last draw, from its own stream
///    seeded with policy_mapping_seed. The new policies act from the step after that episode end on.
/// The rollout split owns the current mapping (RolloutSplit::policy_of_row) and writes it into the policy_id
/// buffer at every step, where the inference server reads which policy acts for each row. (A Python worker
/// overwrites the steps of an agent its env reports inactive with -1, which the learners skip.)
struct SplitAssignment {
  int split_id = 0;
  int index_in_worker = 0;
  std::int64_t first_env_id = 0;
  std::int64_t agents_per_env = 1;
  std::int32_t num_policies = 1;
  bool mix_policies_in_one_env = true;
  std::int64_t policy_resample_episodes = 0;
  std::uint64_t policy_mapping_seed = 0;
  // per env
  std::vector<std::uint64_t> env_seeds;
  std::vector<std::int64_t> warm_up_steps;
  std::vector<std::uint64_t> warm_up_seeds;
  // per row (agent)
  std::vector<std::int32_t> policy_ids;

  [[nodiscard]] std::int64_t num_envs() const { return static_cast<std::int64_t>(env_seeds.size()); }
  [[nodiscard]] std::int64_t num_rows() const { return static_cast<std::int64_t>(policy_ids.size()); }
  /// The global id of the env whose agent is block row `row`.
  [[nodiscard]] std::int64_t env_of_row(std::int64_t row) const { return first_env_id + row / agents_per_env; }
};

/// The assignment of split `split_id`, the `index_in_worker`-th split of its worker.
[[nodiscard]] SplitAssignment assign_split(const AssignmentRules& rules, int split_id, int index_in_worker);

}  // namespace pysf::sampler
