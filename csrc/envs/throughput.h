// measure_step_throughput: how many env-steps per second a VectorEnv block runs on one thread.
#pragma once

#include <cstdint>

#include "envs/vector_env.h"

namespace pysf::envs {

struct StepThroughput {
  std::int64_t env_steps = 0;  ///< steps timed, summed over the block's envs
  double seconds = 0.0;

  [[nodiscard]] double env_steps_per_second() const { return seconds > 0 ? env_steps / seconds : 0.0; }
  [[nodiscard]] double nanoseconds_per_env_step() const { return env_steps > 0 ? seconds * 1e9 / env_steps : 0.0; }
};

/// Resets `env`, then steps it on the calling thread for at least `min_seconds` (after an untimed
/// warm-up) with uniformly random valid actions, into preallocated contiguous outputs with the
/// episode columns enabled. The actions are drawn beforehand (from `seed`) as a cycle of float32
/// batches, the form the rollout engine's buffers hold them in, so neither drawing them nor any
/// allocation is timed: the figure is the env's own cost, validation and auto-resets included.
[[nodiscard]] StepThroughput measure_step_throughput(VectorEnv& env, double min_seconds, std::uint64_t seed);

}  // namespace pysf::envs
