// Bindings for pysf::sampler::Sampler (and the eager-Python policy runner). Conversion and GIL only.
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include <ATen/ATen.h>

#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "inference/policy.h"
#include "inference/policy_runner.h"
#include "python/bindings.h"
#include "sampler/sampler.h"
#include "sampler/sampler_mailbox_end.h"
#include "sampler/worker_mailbox_end.h"

namespace py = pybind11;
using pysf::inference::PolicyOutput;
using pysf::inference::PolicyRunner;
using pysf::core::TensorMap;
using pysf::sampler::UniqueFd;

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
    // Create this thread's Python thread state once, then let go of the GIL while keeping the state. With
    // several Python policies, a thread is started once per policy: the state is shared, counted.
    if (thread_users_++ > 0) return;
    acquire_ = std::make_unique<py::gil_scoped_acquire>();
    release_ = std::make_unique<py::gil_scoped_release>();
  }
  void thread_stopping() override {
    if (--thread_users_ > 0) return;
    release_.reset();
    acquire_.reset();
  }

 private:
  py::object policy_;
  // One Python thread state per OS thread, whichever Python policies that thread runs.
  static thread_local std::unique_ptr<py::gil_scoped_acquire> acquire_;
  static thread_local std::unique_ptr<py::gil_scoped_release> release_;
  static thread_local int thread_users_;
};

thread_local int PythonPolicyRunner::thread_users_ = 0;

thread_local std::unique_ptr<py::gil_scoped_acquire> PythonPolicyRunner::acquire_;
thread_local std::unique_ptr<py::gil_scoped_release> PythonPolicyRunner::release_;

/// SplitAssignments as plain dicts (picklable: they travel to worker processes in their WorkerSpec).
py::dict assignment_dict(const pysf::sampler::SplitAssignment& a) {
  py::dict d;
  d["split_id"] = a.split_id;
  d["index_in_worker"] = a.index_in_worker;
  d["first_env_id"] = a.first_env_id;
  d["agents_per_env"] = a.agents_per_env;
  d["env_seeds"] = a.env_seeds;
  d["warm_up_steps"] = a.warm_up_steps;
  d["warm_up_seeds"] = a.warm_up_seeds;
  d["policy_ids"] = a.policy_ids;
  return d;
}

py::list assignment_dicts(const std::vector<pysf::sampler::SplitAssignment>& assignments) {
  py::list result;
  for (const auto& a : assignments) result.append(assignment_dict(a));
  return result;
}

/// Calls `visit(name, field)` for every SamplerConfig setting Python may give: the one list of their names, used
/// to read a config dict and to export the defaults.
template <typename Config, typename Visit>
void for_each_setting(Config& config, Visit&& visit) {
  visit("native_env_name", config.native_env_name);
  visit("num_native_workers", config.num_native_workers);
  visit("envs_per_native_worker", config.envs_per_native_worker);
  visit("worker_num_splits", config.worker_num_splits);
  visit("agents_per_env", config.agents_per_env);
  visit("seed", config.seed);
  visit("decorrelate_envs_on_one_worker", config.decorrelate_envs_on_one_worker);
  visit("mix_policies_in_one_env", config.mix_policies_in_one_env);
  visit("policy_resample_episodes", config.policy_resample_episodes);
  visit("reward_scale", config.reward_shaping.scale);
  visit("reward_clip", config.reward_shaping.clip);
  visit("num_inference_threads", config.inference.num_threads);
  visit("max_inference_batch_rows", config.inference.max_batch_rows);
  visit("deterministic_actions", config.inference.deterministic_actions);
  visit("serial_inference_order", config.inference.serial_order);
  visit("stall_timeout_seconds", config.stall_limits.stuck_after_seconds);
  visit("stall_check_seconds", config.stall_limits.check_every_seconds);
}

/// The SamplerConfig a Python dict describes. A key that is not given keeps SamplerConfig's own default (the
/// one place defaults live); a key this function does not know is an error, so a misspelt setting cannot be
/// silently ignored.
pysf::sampler::SamplerConfig config_from_dict(const py::dict& d) {
  pysf::sampler::SamplerConfig config;
  std::set<std::string> known;
  for_each_setting(config, [&](const char* name, auto& field) {
    known.insert(name);
    if (d.contains(name)) field = d[name].cast<std::remove_reference_t<decltype(field)>>();
  });
  for (const auto& item : d) {
    const auto key = item.first.cast<std::string>();
    if (known.count(key) == 0) throw py::key_error("Sampler config: unknown setting '" + key + "'");
  }
  return config;
}

/// SamplerConfig's defaults as a dict (the flags that configure the sampler take their defaults from here).
py::dict config_defaults() {
  pysf::sampler::SamplerConfig config;
  py::dict defaults;
  for_each_setting(config, [&](const char* name, const auto& field) { defaults[name] = py::cast(field); });
  return defaults;
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

/// pysf._C.WorkerMailbox: the env worker process's end of its channel to the sampler, plus the layout
/// facts Python needs (worker_mailbox.h owns them; pysf/algo/sampling/protocol.py reads them from here).
void bind_worker_mailbox(py::module_& module) {
  using pysf::sampler::CommandKind;
  using pysf::sampler::MailboxLayout;
  using pysf::sampler::ReportKind;
  using pysf::sampler::WorkerMailboxEnd;

  py::class_<WorkerMailboxEnd> mailbox(module, "WorkerMailbox", R"doc(
The env worker process's end of its channel to the sampler (csrc/sampler/worker_mailbox.h): commands
arrive in a shared-memory mailbox announced by an eventfd, reports go back the same way, and an error
text goes through the lifeline socket just before the process exits.
)doc");
  mailbox
      .def(py::init([](const at::Tensor& words, int num_splits, std::int64_t block_rows, int commands_posted_fd,
                       int wake_sampler_fd, int lifeline_fd) {
             // Owned from here on, so that they are closed even if the mailbox is rejected.
             UniqueFd commands_posted(commands_posted_fd);
             UniqueFd wake_sampler(wake_sampler_fd);
             UniqueFd lifeline(lifeline_fd);
             return std::make_unique<WorkerMailboxEnd>(
                 pysf::sampler::MailboxWords(words, MailboxLayout(num_splits, block_rows)), std::move(commands_posted),
                 std::move(wake_sampler), std::move(lifeline));
           }),
           py::arg("mailbox"), py::arg("num_splits"), py::arg("block_rows"), py::arg("commands_posted_fd"),
           py::arg("wake_sampler_fd"), py::arg("lifeline_fd"), "Takes ownership of the three fds.")
      .def("attach", &WorkerMailboxEnd::attach,
           "Claim the mailbox before creating envs; False if the sampler gave up on this worker (exit at once).")
      .def("stop_requested", &WorkerMailboxEnd::stop_requested,
           "Whether to stop (STOP was posted or the sampler is gone); also tells the sampler this worker makes "
           "progress. Call it between slow steps (env creation, warm-up).")
      .def(
          "wait",
          [](WorkerMailboxEnd& end) {
            pysf::sampler::WorkerCommand command{};
            {
              const py::gil_scoped_release no_gil;
              command = end.wait();
            }
            return py::make_tuple(static_cast<std::int64_t>(command.kind), command.split, command.block, command.step);
          },
          "Block until the next command: (kind, split, block, step); kind STOP when the worker must exit.")
      .def(
          "post_ready", [](WorkerMailboxEnd& end, int split) { end.post_report(ReportKind::kReady, split, 0); },
          py::arg("split"), "The split's initial observations are written.")
      .def(
          "post_stepped",
          [](WorkerMailboxEnd& end, int split, std::int64_t num_episodes) {
            end.post_report(ReportKind::kStepped, split, num_episodes);
          },
          py::arg("split"), py::arg("num_episodes"),
          "The split stepped; the first `num_episodes` rows of episode_records(split) hold the finished episodes.")
      .def("episode_records", &WorkerMailboxEnd::episode_records, py::arg("split"),
           "int64 view [block_rows, len(RECORD_FIELDS)] of the split's finished-episode records in the mailbox.")
      .def("report_error", &WorkerMailboxEnd::report_error, py::arg("text"),
           "Send an error text to the sampler (best effort, one write); call just before exiting.")
      .def_static(
          "words", [](int num_splits, std::int64_t block_rows) { return MailboxLayout(num_splits, block_rows).words(); },
          py::arg("num_splits"), py::arg("block_rows"), "Size of a mailbox in int64 words.")
      .def_static("abandon_if_starting", &pysf::sampler::abandon_if_starting, py::arg("mailbox"),
                  "For the process managing the workers, after the sampler stopped: True if the worker never "
                  "attached (it holds no envs and may be terminated at once; it will not attach any more).");
  mailbox.attr("ASSIGN") = static_cast<std::int64_t>(CommandKind::kAssign);
  mailbox.attr("ACT") = static_cast<std::int64_t>(CommandKind::kAct);
  mailbox.attr("STOP") = static_cast<std::int64_t>(CommandKind::kStop);
  // Word order of an episode record; kReturn holds float64 bits.
  static_assert(MailboxLayout::kEnvIndex == 0 && MailboxLayout::kReturn == 1 && MailboxLayout::kLength == 2 &&
                MailboxLayout::kRecordWords == 3);
  mailbox.attr("RECORD_FIELDS") = py::make_tuple("env_index", "raw_return", "length");
  mailbox.attr("MAX_ERROR_REPORT_BYTES") = pysf::sampler::kMaxErrorReportBytes;
}

}  // namespace

namespace pysf::python {

void bind_sampler(py::module_& module) {
  using pysf::sampler::Sampler;
  using release_gil = py::call_guard<py::gil_scoped_release>;

  module.def("sampler_config_defaults", &config_defaults,
             "SamplerConfig's defaults (csrc/sampler/sampler.h), by the setting names Sampler(config=...) takes.");
  module.def(
      "assign_split",
      [](std::uint64_t seed, std::int64_t envs_per_split, std::int64_t warm_up_steps_per_index, int split_id,
         int index_in_worker, std::int64_t agents_per_env) {
        return assignment_dict(pysf::sampler::assign_split(
            pysf::sampler::AssignmentRules{.seed = seed,
                                           .envs_per_split = envs_per_split,
                                           .agents_per_env = agents_per_env,
                                           .warm_up_steps_per_index = warm_up_steps_per_index},
            split_id, index_in_worker));
      },
      py::arg("seed"), py::arg("envs_per_split"), py::arg("warm_up_steps_per_index"), py::arg("split_id"),
      py::arg("index_in_worker"), py::arg("agents_per_env") = 1,
      "The assignment the Sampler gives a split (csrc/sampler/split_assignment.h), as Sampler.next_remote_assignments "
      "returns it.");

  py::class_<Sampler, std::unique_ptr<Sampler, ReleaseGilDeleter>>(module, "Sampler", R"doc(
The native sampling engine: env runner threads (native envs), proxies of Python env worker processes,
inference threads and the trajectory block queues. See csrc/sampler/sampler.h.
)doc")
      .def(py::init([](const py::dict& config, const py::dict& buffers, const py::object& policy) {
             // One policy, or a list of them: policy p acts for the agents mapped to p (split_assignment.h).
             std::vector<std::shared_ptr<PolicyRunner>> policies;
             if (py::isinstance<py::list>(policy) || py::isinstance<py::tuple>(policy)) {
               for (const py::handle item : policy) policies.push_back(make_runner(py::reinterpret_borrow<py::object>(item)));
             } else {
               policies.push_back(make_runner(policy));
             }
             return std::unique_ptr<Sampler, ReleaseGilDeleter>(
                 std::make_unique<Sampler>(config_from_dict(config), pysf::python::buffers_from_dict(buffers),
                                           std::move(policies)).release());
           }),
           py::arg("config"), py::arg("buffers"), py::arg("policy"))
      .def(
          "add_remote_worker",
          [](Sampler& sampler, const at::Tensor& mailbox, int wake_worker_fd, int reports_posted_fd, int lifeline_fd,
             int num_splits, const std::string& description) {
            pysf::sampler::WorkerChannels channels{mailbox, UniqueFd(wake_worker_fd), UniqueFd(reports_posted_fd),
                                                   UniqueFd(lifeline_fd)};
            return assignment_dicts(sampler.add_remote_worker(std::move(channels), num_splits, description));
          },
          py::arg("mailbox"), py::arg("wake_worker_fd"), py::arg("reports_posted_fd"), py::arg("lifeline_fd"),
          py::arg("num_splits"), py::arg("description"),
          "Register a Python env worker process (csrc/sampler/worker_mailbox.h): its shared mailbox tensor, the "
          "eventfd it waits on, the eventfd it signals, the sampler's end of its lifeline socket. Takes ownership "
          "of the three fds (also on error). Returns the assignments of its splits (see next_remote_assignments).")
      .def(
          "next_remote_assignments",
          [](const Sampler& sampler, int num_splits) { return assignment_dicts(sampler.next_remote_assignments(num_splits)); },
          py::arg("num_splits"),
          "What the splits of the next add_remote_worker(num_splits=...) will be assigned (csrc/sampler/split_assignment.h): "
          "one dict per split with split_id, index_in_worker, first_env_id and per-env lists env_seeds, warm_up_steps, "
          "warm_up_seeds, policy_ids.")
      .def("start", &Sampler::start, release_gil())
      .def("stop", &Sampler::stop, release_gil(), "Stop and join everything (idempotent).")
      .def("get_trajectories", &Sampler::get_trajectories, py::arg("num_blocks"), py::arg("timeout"), release_gil(),
           "Wait up to `timeout` seconds for `num_blocks` completed blocks; returns their indices.")
      .def("release", &Sampler::release, py::arg("blocks"), release_gil(), "Return consumed blocks to the free pool.")
      .def(
          "drain_episode_stats",
          [](Sampler& sampler) {
            py::list episodes;
            for (const auto& e : sampler.drain_episode_stats()) {
              episodes.append(py::make_tuple(e.env_id, e.policy_id, e.opponent_policy_id, e.reward, e.length));
            }
            return episodes;
          },
          "Finished episodes since the last call: (env_id, policy_id, opponent_policy_id, raw return, length in env "
          "steps) tuples (csrc/sampler/episode_stats.h EpisodeStat).")
      .def("fail", &Sampler::fail, py::arg("message"), release_gil())
      .def_property_readonly("error", &Sampler::error)
      .def_property_readonly("rows_served", &Sampler::rows_served)
      .def_property_readonly("rows_served_by_policy", &Sampler::rows_served_by_policy,
                             "Env rows each policy's inference served so far (a list, policy p at index p).")
      .def("stalled_remote_workers", &Sampler::stalled_remote_workers,
           "Indices (registration order) of the worker processes found stuck (no progress while owing a report).")
      .def_property_readonly("num_splits", &Sampler::num_splits);

  bind_worker_mailbox(module);
}

}  // namespace pysf::python
