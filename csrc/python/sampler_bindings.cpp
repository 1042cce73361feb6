// Bindings for pysf::sampler::Sampler (and the eager-Python policy runner). Conversion and GIL only.
#include <torch/csrc/utils/pybind.h>

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "inference/policy.h"
#include "inference/policy_runner.h"
#include "python/bindings.h"
#include "sampler/sampler.h"

namespace py = pybind11;
using pysf::inference::PolicyOutput;
using pysf::inference::PolicyRunner;
using pysf::inference::TensorMap;

namespace {

/// --inference_backend=python: the inference threads call an eager Python callable
/// `policy(obs: dict, rnn_states: Tensor, deterministic: bool) -> (dict, version)`. Each inference thread
/// keeps one Python thread state for its whole life, so taking the GIL per batch is cheap.
class PythonPolicyRunner final : public PolicyRunner {
 public:
  explicit PythonPolicyRunner(py::object policy) : policy_(std::move(policy)) {}
  ~PythonPolicyRunner() override {
    const py::gil_scoped_acquire gil;
    policy_ = py::object();
  }

  PolicyOutput forward(const TensorMap& obs, const at::Tensor& rnn_states, bool deterministic) override {
    const py::gil_scoped_acquire gil;
    py::dict obs_dict;
    for (const auto& [key, tensor] : obs) obs_dict[py::str(key)] = py::cast(tensor);
    const py::tuple result = policy_(obs_dict, py::cast(rnn_states), deterministic);
    PolicyOutput output;
    for (const auto& [key, value] : result[0].cast<py::dict>()) {
      output.outputs.insert_or_assign(key.cast<std::string>(), value.cast<at::Tensor>());
    }
    output.policy_version = result[1].cast<std::int64_t>();
    return output;
  }

  void thread_started() override {
    // Create this thread's Python thread state once, then let go of the GIL while keeping the state.
    acquire_ = std::make_unique<py::gil_scoped_acquire>();
    release_ = std::make_unique<py::gil_scoped_release>();
  }
  void thread_stopping() override {
    release_.reset();
    acquire_.reset();
  }

 private:
  py::object policy_;
  // thread_local would be cleaner, but each runner instance needs its own per-thread state.
  static thread_local std::unique_ptr<py::gil_scoped_acquire> acquire_;
  static thread_local std::unique_ptr<py::gil_scoped_release> release_;
};

thread_local std::unique_ptr<py::gil_scoped_acquire> PythonPolicyRunner::acquire_;
thread_local std::unique_ptr<py::gil_scoped_release> PythonPolicyRunner::release_;

pysf::buffers::TrajectoryBuffers buffers_from_dict(const py::dict& d) {
  pysf::buffers::TrajectoryBuffers buffers;
  for (const auto& [key, tensor] : d["obs"].cast<py::dict>()) {
    buffers.obs.insert_or_assign(key.cast<std::string>(), tensor.cast<at::Tensor>());
  }
  auto tensor = [&](const char* name) { return d[name].cast<at::Tensor>(); };
  buffers.rnn_states = tensor("rnn_states");
  buffers.actions = tensor("actions");
  buffers.action_logits = tensor("action_logits");
  buffers.log_prob_actions = tensor("log_prob_actions");
  buffers.values = tensor("values");
  buffers.rewards = tensor("rewards");
  buffers.dones = tensor("dones");
  buffers.time_outs = tensor("time_outs");
  buffers.policy_version = tensor("policy_version");
  buffers.policy_id = tensor("policy_id");
  buffers.valids = tensor("valids");
  buffers.block_rows = d["block_rows"].cast<std::int64_t>();
  return buffers;
}

pysf::sampler::SamplerConfig config_from_dict(const py::dict& d) {
  pysf::sampler::SamplerConfig config;
  auto get = [&](const char* name, auto fallback) {
    return d.contains(name) ? d[name].cast<decltype(fallback)>() : fallback;
  };
  config.native_env_name = get("native_env_name", std::string());
  config.num_native_workers = get("num_native_workers", 0);
  config.envs_per_native_worker = get("envs_per_native_worker", 0);
  config.worker_num_splits = get("worker_num_splits", 2);
  config.seed = get("seed", std::uint64_t{0});
  config.reward_shaping.scale = get("reward_scale", 1.0F);
  config.reward_shaping.clip = get("reward_clip", 1000.0F);
  config.inference.num_threads = get("num_inference_threads", 1);
  config.inference.max_batch_rows = get("max_inference_batch_rows", std::int64_t{1} << 20);
  config.inference.deterministic_actions = get("deterministic_actions", false);
  config.inference.serial_order = get("serial_inference_order", false);
  return config;
}

std::shared_ptr<PolicyRunner> make_runner(const py::object& policy) {
  if (py::isinstance<pysf::inference::Policy>(policy)) {
    return std::make_shared<pysf::inference::NativePolicyRunner>(policy.cast<std::shared_ptr<pysf::inference::Policy>>());
  }
  if (!PyCallable_Check(policy.ptr())) throw py::type_error("policy must be a pysf._C.Policy or a callable");
  return std::make_shared<PythonPolicyRunner>(policy);
}

/// Destroys a Sampler without the GIL: its destructor joins inference threads that may be waiting for
/// the GIL (eager Python policy), which would deadlock if the deleting thread kept holding it.
struct ReleaseGilDeleter {
  void operator()(pysf::sampler::Sampler* sampler) const {
    const py::gil_scoped_release no_gil;
    std::default_delete<pysf::sampler::Sampler>()(sampler);
  }
};

}  // namespace

namespace pysf::python {

void bind_sampler(py::module_& module) {
  using pysf::sampler::Sampler;
  using release_gil = py::call_guard<py::gil_scoped_release>;

  py::class_<Sampler, std::unique_ptr<Sampler, ReleaseGilDeleter>>(module, "Sampler", R"doc(
The native sampling engine: env runner threads (native envs), proxies of Python env worker processes,
inference threads and the trajectory block queues. See csrc/sampler/sampler.h.
)doc")
      .def(py::init([](const py::dict& config, const py::dict& buffers, const py::object& policy) {
             return std::unique_ptr<Sampler, ReleaseGilDeleter>(
                 std::make_unique<Sampler>(config_from_dict(config), buffers_from_dict(buffers), make_runner(policy)).release());
           }),
           py::arg("config"), py::arg("buffers"), py::arg("policy"))
      .def("add_remote_worker", &Sampler::add_remote_worker, py::arg("request_fd"), py::arg("reply_fd"),
           py::arg("num_splits"), py::arg("description"),
           "Register a Python env worker process (takes ownership of both fds); returns its global split ids.")
      .def("start", &Sampler::start, release_gil())
      .def("stop", &Sampler::stop, release_gil(), "Stop and join everything (idempotent).")
      .def("get_trajectories", &Sampler::get_trajectories, py::arg("num_blocks"), py::arg("timeout"), release_gil(),
           "Wait up to `timeout` seconds for `num_blocks` completed blocks; returns their indices.")
      .def("release", &Sampler::release, py::arg("blocks"), release_gil(), "Return consumed blocks to the free pool.")
      .def(
          "drain_episode_stats",
          [](Sampler& sampler) {
            const auto stats = sampler.drain_episode_stats();
            const auto count = static_cast<std::int64_t>(stats.size());
            at::Tensor env_id = at::empty({count}, at::kInt);
            at::Tensor reward = at::empty({count}, at::kFloat);
            at::Tensor length = at::empty({count}, at::kInt);
            auto* env_ids = env_id.data_ptr<std::int32_t>();
            auto* rewards = reward.data_ptr<float>();
            auto* lengths = length.data_ptr<std::int32_t>();
            for (std::size_t i = 0; i < stats.size(); ++i) {
              env_ids[i] = stats[i].env_id;
              rewards[i] = stats[i].reward;
              lengths[i] = stats[i].length;
            }
            py::dict result;
            result["env_id"] = env_id;
            result["reward"] = reward;
            result["length"] = length;
            return result;
          },
          "Finished episodes since the last call: dict of env_id, reward (raw return), length tensors.")
      .def("fail", &Sampler::fail, py::arg("message"), release_gil())
      .def_property_readonly("error", &Sampler::error)
      .def_property_readonly("rows_served", &Sampler::rows_served)
      .def_property_readonly("num_splits", &Sampler::num_splits);
}

}  // namespace pysf::python
