// Bindings for the native envs (csrc/envs). Conversion and GIL handling only; the behaviour is in csrc/envs.
#include <torch/csrc/utils/pybind.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "envs/registry.h"
#include "envs/throughput.h"
#include "envs/vector_env.h"
#include "python/bindings.h"

namespace py = pybind11;
using pysf::envs::EnvSpec;
using pysf::envs::Space;
using pysf::envs::StepOutput;
using pysf::envs::VectorEnv;

namespace {

// A space as the plain data a Python helper needs to build the gymnasium space: gymnasium.spaces.Box(
// low, high, shape, float32) or gymnasium.spaces.Discrete(n) (int64, start 0).
py::dict space_to_dict(const Space& space) {
  py::dict result;
  if (space.kind == Space::Kind::Discrete) {
    result["kind"] = "discrete";
    result["n"] = space.n;
    result["shape"] = py::tuple();
    result["dtype"] = "int64";
  } else {
    result["kind"] = "box";
    result["shape"] = py::tuple(py::cast(space.shape));
    // Python floats hold the float32 bounds exactly, infinities included.
    result["low"] = std::vector<double>(space.low.begin(), space.low.end());
    result["high"] = std::vector<double>(space.high.begin(), space.high.end());
    result["dtype"] = "float32";
  }
  return result;
}

py::dict spec_to_dict(const EnvSpec& spec) {
  py::dict result;
  result["name"] = spec.name;
  result["observation_space"] = space_to_dict(spec.observation_space);
  result["action_space"] = space_to_dict(spec.action_space);
  result["max_episode_steps"] = spec.max_episode_steps;
  result["reward_threshold"] = spec.reward_threshold ? py::cast(*spec.reward_threshold) : py::none();
  result["num_agents"] = spec.num_agents;
  return result;
}

// Fresh outputs for one step of `env`. The episode columns start at zero: rows of envs whose episode
// did not finish are not written by the env.
StepOutput allocate_step_output(const VectorEnv& env) {
  const int n = env.num_envs();
  return StepOutput{.obs = at::empty({n, env.observation_size()}, at::kFloat),
                    .rewards = at::empty({n}, at::kFloat),
                    .terminated = at::empty({n}, at::kBool),
                    .truncated = at::empty({n}, at::kBool),
                    .episode_return = at::zeros({n}, at::kFloat),
                    .episode_length = at::zeros({n}, at::kInt)};
}

}  // namespace

namespace pysf::python {

void bind_envs(py::module_& module) {
  // reset/step run without the GIL: pybind converts the arguments before the guard exists and the
  // results after it is gone, so Python objects are only touched with the GIL held.
  using release_gil = py::call_guard<py::gil_scoped_release>;

  module.def("native_env_names", &envs::native_env_names,
             "The gymnasium ids with a native implementation (NativeVectorEnv names).");
  module.def(
      "native_env_spec", [](const std::string& name) { return spec_to_dict(envs::native_env_spec(name)); },
      py::arg("name"),
      "The spec of a native env (as NativeVectorEnv.spec: name, spaces, max_episode_steps, reward_threshold, "
      "num_agents). Raises ValueError for an unknown name.");

  py::class_<VectorEnv>(module, "NativeVectorEnv", R"doc(
A block of ``num_envs`` independent native environments of one gymnasium id, stepped in one call.

Same spaces, dynamics, rewards, termination and TimeLimit truncation as ``gymnasium.make(name)``.
Episodes auto-reset inside ``step`` (Sample Factory semantics): for an env whose episode finished in
that step, the returned observation is the first one of its next episode, while reward, terminated,
truncated, episode_return and episode_length describe the finished step and episode.
Env i's initial states come from its own random stream, seeded from ``(seed, i)`` only.
Not thread-safe: use an instance from one thread at a time. reset/step release the GIL.
)doc")
      .def(py::init([](const std::string& name, int num_envs, std::uint64_t seed) {
             return envs::make_vector_env(name, num_envs, seed);
           }),
           py::arg("name"), py::arg("num_envs") = 1, py::arg("seed") = 0,
           "Raises ValueError for an unknown name (listing the available ones) or num_envs < 1.")
      .def(
          "reset",
          [](VectorEnv& env) {
            const at::Tensor obs = at::empty({env.num_envs(), env.observation_size()}, at::kFloat);
            env.reset(StepOutput{.obs = obs});
            return obs;
          },
          release_gil(), "Start a new episode in every env. Returns the observations, float32 [N, obs_dim].")
      .def(
          "reset_into", [](VectorEnv& env, const at::Tensor& obs) { env.reset(StepOutput{.obs = obs}); },
          py::arg("obs"), release_gil(),
          "reset() writing into `obs`: a float32 [N, obs_dim] CPU tensor, any strides (e.g. a slice).")
      .def(
          "step",
          [](VectorEnv& env, const at::Tensor& actions) {
            const StepOutput out = allocate_step_output(env);
            env.step(actions, out);
            return std::make_tuple(out.obs, out.rewards, out.terminated, out.truncated, out.episode_return,
                                   out.episode_length);
          },
          py::arg("actions"), release_gil(),
          "Step every env. `actions`: Discrete: [N] or [N, 1] int64/int32/float32/float64 integers in [0, n); "
          "Box: [N, k] (or [N] if k == 1) float32/float64. Returns (obs float32 [N, obs_dim], rewards float32 "
          "[N], terminated bool [N], truncated bool [N], episode_return float32 [N], episode_length int32 [N]); "
          "the episode columns are 0 except where terminated | truncated. Raises ValueError for invalid actions.")
      .def(
          "step_into",
          [](VectorEnv& env, const at::Tensor& actions, const at::Tensor& obs, const at::Tensor& rewards,
             const at::Tensor& terminated, const at::Tensor& truncated, const std::optional<at::Tensor>& episode_return,
             const std::optional<at::Tensor>& episode_length) {
            env.step(actions, StepOutput{.obs = obs,
                                         .rewards = rewards,
                                         .terminated = terminated,
                                         .truncated = truncated,
                                         .episode_return = episode_return.value_or(at::Tensor()),
                                         .episode_length = episode_length.value_or(at::Tensor())});
          },
          py::arg("actions"), py::arg("obs"), py::arg("rewards"), py::arg("terminated"), py::arg("truncated"),
          py::arg("episode_return") = py::none(), py::arg("episode_length") = py::none(), release_gil(),
          "step() writing into caller-owned CPU tensors (any strides, e.g. slices of a trajectory buffer): "
          "obs float32 [N, obs_dim], rewards float32 [N], terminated/truncated bool [N], and optionally "
          "episode_return float32 [N] / episode_length int32 [N], written only where an episode finished.")
      .def(
          "seed", [](VectorEnv& env, std::uint64_t seed) { env.seed(seed); }, py::arg("seed"),
          "Re-seed every env's stream (env i from (seed, i)); used from the next initial state drawn.")
      .def(
          "seed", [](VectorEnv& env, const std::vector<std::uint64_t>& seeds) { env.seed(seeds); },
          py::arg("seeds"), "Re-seed with one seed per env.")
      .def("get_state", &VectorEnv::get_state, py::arg("env_index"),
           "Env i's physical state as floats (e.g. CartPole [x, x_dot, theta, theta_dot]).")
      .def(
          "set_state",
          [](VectorEnv& env, int env_index, const std::vector<double>& state, int elapsed_steps,
             double episode_return) { env.set_state(env_index, state, elapsed_steps, episode_return); },
          py::arg("env_index"), py::arg("state"), py::arg("elapsed_steps") = 0, py::arg("episode_return") = 0.0,
          "Put env i into `state`, `elapsed_steps` into an episode that has earned `episode_return` so far.")
      .def("elapsed_steps", &VectorEnv::elapsed_steps, py::arg("env_index"),
           "Steps taken in env i's current episode (its TimeLimit counter).")
      .def(
          "random_steps",
          [](VectorEnv& env, int env_index, std::int64_t num_steps, std::uint64_t seed) {
            envs::Rng action_rng(seed);
            env.random_steps(env_index, num_steps, action_rng);
          },
          py::arg("env_index"), py::arg("num_steps"), py::arg("seed") = 0, release_gil(),
          "Sample Factory's decorrelation warm-up of env i: `num_steps` steps with uniformly random actions "
          "(drawn from `seed`), auto-resetting, writing nothing; the running episode keeps its length and return.")
      .def(
          "observe",
          [](const VectorEnv& env) {
            const at::Tensor obs = at::empty({env.num_envs(), env.observation_size()}, at::kFloat);
            env.observe(obs);
            return obs;
          },
          release_gil(), "Every env's current observation, float32 [N, obs_dim].")
      .def(
          "benchmark",
          [](VectorEnv& env, double min_seconds, std::uint64_t seed) {
            envs::StepThroughput result;
            {
              py::gil_scoped_release no_gil;
              result = envs::measure_step_throughput(env, min_seconds, seed);
            }
            py::dict stats;
            stats["env_steps"] = result.env_steps;
            stats["seconds"] = result.seconds;
            stats["env_steps_per_second"] = result.env_steps_per_second();
            stats["ns_per_env_step"] = result.nanoseconds_per_env_step();
            return stats;
          },
          py::arg("min_seconds") = 0.5, py::arg("seed") = 0,
          "Reset, then step with random actions in a C++ loop on this thread for >= min_seconds. Returns "
          "{env_steps, seconds, env_steps_per_second, ns_per_env_step}. Leaves the envs mid-episode.")
      .def_property_readonly(
          "spec", [](const VectorEnv& env) { return spec_to_dict(env.spec()); },
          "dict: name, observation_space / action_space (kind 'box': shape, low, high, dtype 'float32'; kind "
          "'discrete': n, shape (), dtype 'int64'), max_episode_steps, reward_threshold (or None).")
      .def_property_readonly(
          "name", [](const VectorEnv& env) { return env.spec().name; }, "The gymnasium id.")
      .def_property_readonly("num_envs", &VectorEnv::num_envs)
      .def_property_readonly("observation_size", &VectorEnv::observation_size, "Floats per observation row.")
      .def_property_readonly("state_size", &VectorEnv::state_size, "Values in get_state / set_state.")
      .def("__repr__", [](const VectorEnv& env) {
        return "NativeVectorEnv(" + env.spec().name + ", num_envs=" + std::to_string(env.num_envs()) + ")";
      });
}

}  // namespace pysf::python
