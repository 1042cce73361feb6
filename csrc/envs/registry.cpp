// The table of native envs: gymnasium id -> factory. Adding an env: its .cpp defines the factory,
// classic_control.h (or board_games.h) declares it, and one line here lists it; nothing else changes.
#include "envs/registry.h"

#include <array>
#include <stdexcept>
#include <string_view>

#include "envs/board_games.h"
#include "envs/classic_control.h"

namespace pysf::envs {

namespace {

struct Entry {
  std::string_view name;
  std::unique_ptr<VectorEnv> (*make)(int num_envs, std::uint64_t seed);
};

constexpr std::array kEntries = {
    Entry{"CartPole-v1", &make_cartpole_env},
    Entry{"Acrobot-v1", &make_acrobot_env},
    Entry{"MountainCar-v0", &make_mountain_car_env},
    Entry{"MountainCarContinuous-v0", &make_mountain_car_continuous_env},
    Entry{"Pendulum-v1", &make_pendulum_env},
    Entry{"ConnectFour-v0", &make_connect_four_env},
};

const Entry* find(const std::string& name) {
  for (const Entry& entry : kEntries) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

}  // namespace

std::vector<std::string> native_env_names() {
  std::vector<std::string> names;
  names.reserve(kEntries.size());
  for (const Entry& entry : kEntries) names.emplace_back(entry.name);
  return names;
}

bool has_native_env(const std::string& name) { return find(name) != nullptr; }

EnvSpec native_env_spec(const std::string& name) {
  constexpr int kSmallestBlock = 2;  // every native env accepts it (a board game's two seats)
  return make_vector_env(name, kSmallestBlock, 0)->spec();
}

std::unique_ptr<VectorEnv> make_vector_env(const std::string& name, int num_envs, std::uint64_t seed) {
  const Entry* entry = find(name);
  if (entry == nullptr) {
    std::string message = "no native env named '" + name + "'; available: ";
    for (std::size_t i = 0; i < kEntries.size(); ++i) {
      message += (i ? ", " : "");
      message += kEntries[i].name;
    }
    throw std::invalid_argument(message);
  }
  return entry->make(num_envs, seed);
}

}  // namespace pysf::envs
