// Rng: the small per-env random generator that draws the native envs' initial states.
#pragma once

#include <cstdint>

namespace pysf::envs {

/// One step of SplitMix64 (Steele, Lea, Flood 2014): a bijective 64-bit mixer. Used to turn a seed (or
/// a seed and an env index) into well-spread generator states, as xoshiro's authors recommend.
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// The seed of env `env_index` in a block seeded with `base_seed`. It depends only on the two numbers,
/// so env i behaves the same whatever the block size, and distinct (base, index) pairs get unrelated
/// streams.
[[nodiscard]] constexpr std::uint64_t derive_env_seed(std::uint64_t base_seed, std::uint64_t env_index) noexcept {
  std::uint64_t state = base_seed;
  std::uint64_t mixed = splitmix64(state) + env_index;
  return splitmix64(mixed);
}

/// xoshiro256++ (Blackman & Vigna 2019): 32 bytes of state, a few ns per number. std::mt19937_64 would
/// cost 2.5 KB per env, i.e. 10 MB of mostly cold state for a 4096-env block.
class Rng {
 public:
  explicit constexpr Rng(std::uint64_t seed = 0) noexcept { reseed(seed); }

  constexpr void reseed(std::uint64_t seed) noexcept {
    std::uint64_t state = seed;
    for (auto& word : s_) word = splitmix64(state);  // never all zero: splitmix64 is a bijection
  }

  [[nodiscard]] constexpr std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with 53 random bits, the same construction as NumPy's Generator.random().
  [[nodiscard]] constexpr double uniform01() noexcept {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
  }

  /// Uniform in [low, high), computed as NumPy's Generator.uniform does: low + (high - low) * u.
  [[nodiscard]] constexpr double uniform(double low, double high) noexcept {
    return low + (high - low) * uniform01();
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

  std::uint64_t s_[4]{};
};

}  // namespace pysf::envs
