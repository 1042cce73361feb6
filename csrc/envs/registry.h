// The native env registry: make a VectorEnv block by gymnasium id.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "envs/vector_env.h"

namespace pysf::envs {

/// The gymnasium ids that have a native implementation, in a fixed order:
/// CartPole-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0, Pendulum-v1 (classic_control.h), then
/// ConnectFour-v0 (board_games.h).
[[nodiscard]] std::vector<std::string> native_env_names();

/// True when `name` is one of native_env_names().
[[nodiscard]] bool has_native_env(const std::string& name);

/// The spec of native env `name` (spaces, TimeLimit, agents per env). Throws as make_vector_env does for an
/// unknown name.
[[nodiscard]] EnvSpec native_env_spec(const std::string& name);

/// A block of `num_envs` envs of type `name`, env i seeded with derive_env_seed(seed, i). Call reset()
/// before stepping. Throws std::invalid_argument listing the available names for an unknown `name`, or
/// for num_envs < 1 (or a count the env cannot split, e.g. an odd one for a two-player game).
[[nodiscard]] std::unique_ptr<VectorEnv> make_vector_env(const std::string& name, int num_envs, std::uint64_t seed);

}  // namespace pysf::envs
