// Tests of pysf::inference::Policy (csrc/inference/policy.h) on the TorchScript fixtures written by
// tests/cpp/make_fixtures.py, found in $PYSF_TEST_FIXTURES or next to the executable (fixture_dir below).
#include "inference/policy.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "check.h"

using pysf::inference::Policy;
using pysf::inference::PolicyOutput;
using pysf::core::TensorMap;
using namespace std::chrono_literals;

namespace {

// Where tests/cpp/make_fixtures.py wrote the fixtures: $PYSF_TEST_FIXTURES (ctest sets it), else the
// `fixtures` folder next to the test executable (what the build makes).
const std::string& fixture_dir() {
  static const std::string dir = [] {
    if (const char* from_env = std::getenv("PYSF_TEST_FIXTURES")) return std::string(from_env);
    return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "fixtures").string();
  }();
  return dir;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open fixture " + path + " (run tests/cpp/make_fixtures.py)");
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

const std::string& discrete_archive() {
  static const std::string archive = read_file(fixture_dir() + "/policy_discrete.pt");
  return archive;
}

// The fixture's dimensions, from fixture_info.txt ("key value" lines) so they live in one place.
struct FixtureShape {
  std::int64_t obs_dim = 0;
  std::int64_t rnn_size = 0;
  std::int64_t num_actions = 0;
};

const FixtureShape& fixture_shape() {
  static const FixtureShape shape = [] {
    std::map<std::string, std::int64_t> info;
    std::istringstream lines(read_file(fixture_dir() + "/fixture_info.txt"));
    std::string key;
    std::int64_t value = 0;
    while (lines >> key >> value) info[key] = value;
    return FixtureShape{info.at("obs_dim"), info.at("rnn_size"), info.at("num_actions")};
  }();
  return shape;
}

struct Batch {
  TensorMap obs;
  at::Tensor rnn_states;
};

Batch make_batch(std::int64_t batch_size, std::uint64_t seed = 0) {
  auto generator = at::detail::createCPUGenerator(seed);
  return Batch{TensorMap{{"obs", at::randn({batch_size, fixture_shape().obs_dim}, generator)}},
               at::randn({batch_size, fixture_shape().rnn_size}, generator)};
}

// The archive's own weights, by name (loaded independently of Policy).
TensorMap archive_state() {
  std::istringstream stream(discrete_archive(), std::ios::binary);
  const torch::jit::Module module = torch::jit::load(stream);
  TensorMap state;
  for (const auto& p : module.named_parameters()) state.insert_or_assign(p.name, p.value.detach().clone());
  for (const auto& b : module.named_buffers()) state.insert_or_assign(b.name, b.value.detach().clone());
  return state;
}

// A second weight set whose outputs differ clearly from the archive's in every output.
TensorMap other_state(const TensorMap& base) {
  TensorMap state;
  for (const auto& [name, tensor] : base) {
    state.insert_or_assign(name, name == "value_offset" ? at::full_like(tensor, 100.0) : tensor * -0.7 + 0.05);
  }
  return state;
}

bool same_outputs(const TensorMap& a, const TensorMap& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, tensor] : a) {
    const at::Tensor* other = b.find(name);
    if (other == nullptr || !tensor.equal(*other)) return false;
  }
  return true;
}

}  // namespace

TEST_CASE(forward_returns_the_contract_outputs) {
  const Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const auto& shape = fixture_shape();
  const Batch batch = make_batch(4);
  const PolicyOutput result = policy.forward(batch.obs, batch.rnn_states, /*deterministic=*/false);

  EXPECT(result.policy_version == 0);
  EXPECT(policy.version() == 0);
  EXPECT(policy.device() == c10::Device(c10::kCPU));
  std::vector<std::string> names;
  for (const auto& [name, tensor] : result.outputs) names.push_back(name);
  EXPECT((names == std::vector<std::string>{"values", "action_logits", "actions", "log_prob_actions",
                                           "new_rnn_states"}));
  EXPECT(result.outputs.at("values").sizes() == at::IntArrayRef({4}));
  EXPECT(result.outputs.at("action_logits").sizes() == at::IntArrayRef({4, shape.num_actions}));
  EXPECT(result.outputs.at("actions").sizes() == at::IntArrayRef({4}));
  EXPECT(result.outputs.at("actions").scalar_type() == at::kLong);
  EXPECT(result.outputs.at("log_prob_actions").sizes() == at::IntArrayRef({4}));
  EXPECT(result.outputs.at("new_rnn_states").sizes() == at::IntArrayRef({4, shape.rnn_size}));
  const at::Tensor actions = result.outputs.at("actions");
  EXPECT(actions.min().item<std::int64_t>() >= 0 && actions.max().item<std::int64_t>() < shape.num_actions);
  EXPECT(policy.state_names().front() == "encoder.0.weight");
  EXPECT(policy.state_names().back() == "value_offset");  // buffers come after parameters

  const Policy tagged(discrete_archive(), c10::Device(c10::kCPU), /*initial_version=*/7);
  EXPECT(tagged.version() == 7);
  EXPECT(tagged.forward(batch.obs, batch.rnn_states, false).policy_version == 7);
}

TEST_CASE(outputs_are_ordinary_tensors_usable_by_autograd_and_in_place) {
  const Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const Batch batch = make_batch(6);
  EXPECT(c10::GradMode::is_enabled());
  PolicyOutput result = policy.forward(batch.obs, batch.rnn_states, false);
  EXPECT(c10::GradMode::is_enabled());  // the no-grad guard did not leak into the caller
  at::Tensor values = result.outputs.at("values");
  EXPECT(!values.requires_grad());
  EXPECT(!values.is_inference());
  // torch:: factories (unlike at::) honour requires_grad.
  const at::Tensor weights = torch::ones({6}, torch::requires_grad());
  (values * weights).sum().backward();
  EXPECT(weights.grad().defined() && weights.grad().equal(values));
  const at::Tensor before = values.clone();
  values.add_(1.0);  // in-place updates of outputs are allowed (they would not be on inference tensors)
  EXPECT(values.equal(before + 1.0));
}

TEST_CASE(deterministic_forward_takes_the_argmax_and_is_repeatable) {
  const Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const Batch batch = make_batch(32);
  const PolicyOutput first = policy.forward(batch.obs, batch.rnn_states, /*deterministic=*/true);
  const PolicyOutput second = policy.forward(batch.obs, batch.rnn_states, /*deterministic=*/true);
  const at::Tensor& logits = first.outputs.at("action_logits");
  EXPECT(first.outputs.at("actions").equal(logits.argmax(1)));
  EXPECT(same_outputs(first.outputs, second.outputs));
  const at::Tensor expected_log_prob =
      logits.log_softmax(1).gather(1, first.outputs.at("actions").unsqueeze(1)).squeeze(1);
  EXPECT(first.outputs.at("log_prob_actions").allclose(expected_log_prob));
}

TEST_CASE(stochastic_forward_samples_more_than_the_argmax) {
  const Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const Batch batch = make_batch(1024);
  const PolicyOutput result = policy.forward(batch.obs, batch.rnn_states, /*deterministic=*/false);
  const at::Tensor greedy = result.outputs.at("action_logits").argmax(1);
  // The fixture's initial logits are near-uniform, so sampling disagrees with argmax often.
  EXPECT(result.outputs.at("actions").ne(greedy).sum().item<std::int64_t>() > 100);
}

TEST_CASE(construction_rejects_contract_violations) {
  EXPECT_THROWS(Policy(read_file(fixture_dir() + "/policy_bad_signature.pt"), c10::Device(c10::kCPU)),
               std::invalid_argument, "forward(obs: Dict[str, Tensor], rnn_states: Tensor, deterministic: bool)");
  EXPECT_THROWS(Policy("not a torchscript archive", c10::Device(c10::kCPU)), c10::Error, "");
}

TEST_CASE(update_weights_validates_and_applies_nothing_on_error) {
  Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const Batch batch = make_batch(8);
  const PolicyOutput original = policy.forward(batch.obs, batch.rnn_states, true);
  const TensorMap good = other_state(archive_state());

  TensorMap missing;
  for (const auto& [name, tensor] : good) {
    if (name != "core.bias") missing.insert_or_assign(name, tensor);
  }
  EXPECT_THROWS(policy.update_weights(missing, 1), std::invalid_argument, "Missing: [core.bias]");

  TensorMap unknown = good;
  unknown.insert_or_assign("core.extra", at::zeros({1}));
  EXPECT_THROWS(policy.update_weights(unknown, 1), std::invalid_argument, "Unexpected: [core.extra]");

  TensorMap wrong_shape = good;
  wrong_shape.insert_or_assign("core.weight", good.at("core.weight").t().contiguous());
  EXPECT_THROWS(policy.update_weights(wrong_shape, 1), std::invalid_argument, "core.weight (expected shape");

  TensorMap wrong_dtype = good;
  wrong_dtype.insert_or_assign("value_offset", good.at("value_offset").to(at::kFloat));
  EXPECT_THROWS(policy.update_weights(wrong_dtype, 1), std::invalid_argument, "value_offset (expected dtype Double");

  TensorMap undefined = good;
  undefined.insert_or_assign("core.weight", at::Tensor());
  EXPECT_THROWS(policy.update_weights(undefined, 1), std::invalid_argument, "core.weight (undefined tensor)");

  std::vector<at::Tensor> short_list;
  EXPECT_THROWS(policy.update_weights_list(short_list, 1), std::invalid_argument, "expected 11 tensors");
  std::vector<at::Tensor> bad_list;
  for (const auto& name : policy.state_names()) bad_list.push_back(good.at(name));
  bad_list.front() = at::zeros({1});
  EXPECT_THROWS(policy.update_weights_list(bad_list, 1), std::invalid_argument, "encoder.0.weight (expected shape");

  // Every failed update above left the weights and the version alone.
  EXPECT(policy.version() == 0);
  const PolicyOutput after = policy.forward(batch.obs, batch.rnn_states, true);
  EXPECT(after.policy_version == 0);
  EXPECT(same_outputs(original.outputs, after.outputs));
}

TEST_CASE(update_weights_replaces_parameters_and_buffers_in_both_replicas) {
  Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const Batch batch = make_batch(16);
  const TensorMap state_a = archive_state();
  const TensorMap state_b = other_state(state_a);
  const TensorMap reference_a = policy.forward(batch.obs, batch.rnn_states, true).outputs;

  policy.update_weights(state_b, 1);
  const PolicyOutput with_b = policy.forward(batch.obs, batch.rnn_states, true);
  EXPECT(with_b.policy_version == 1 && policy.version() == 1);
  EXPECT(!with_b.outputs.at("action_logits").equal(reference_a.at("action_logits")));
  // The float64 buffer took part: values are around 100 only if value_offset was copied.
  EXPECT(with_b.outputs.at("values").gt(90.0).all().item<bool>());

  // Alternate a few times through both entry points: each update lands in a different replica, and every
  // one must be complete on its own.
  for (std::int64_t version = 2; version < 8; ++version) {
    const TensorMap& state = version % 2 == 0 ? state_a : state_b;
    if (version % 4 < 2) {
      policy.update_weights(state, version);
    } else {
      std::vector<at::Tensor> ordered;
      for (const auto& name : policy.state_names()) ordered.push_back(state.at(name));
      policy.update_weights_list(ordered, version);
    }
    const PolicyOutput result = policy.forward(batch.obs, batch.rnn_states, true);
    EXPECT(result.policy_version == version);
    EXPECT(same_outputs(result.outputs, version % 2 == 0 ? reference_a : with_b.outputs));
  }
}

TEST_CASE(inputs_are_not_modified_and_may_be_non_contiguous) {
  const Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const Batch batch = make_batch(8);
  const at::Tensor obs_copy = batch.obs.at("obs").clone();
  const at::Tensor transposed_obs = batch.obs.at("obs").t().contiguous().t();  // same values, strided
  const PolicyOutput strided = policy.forward(TensorMap{{"obs", transposed_obs}}, batch.rnn_states, true);
  const PolicyOutput plain = policy.forward(batch.obs, batch.rnn_states, true);
  EXPECT(strided.outputs.at("action_logits").allclose(plain.outputs.at("action_logits")));
  EXPECT(batch.obs.at("obs").equal(obs_copy));
}

TEST_CASE(warmup_and_benchmark) {
  const Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const Batch batch = make_batch(64);
  policy.warmup(batch.obs, batch.rnn_states, 2);
  const double microseconds = policy.benchmark(batch.obs, batch.rnn_states, 20);
  EXPECT(microseconds > 0.0);
  EXPECT_THROWS(policy.benchmark(batch.obs, batch.rnn_states, 0), std::invalid_argument, "iterations");
}

// The core guarantee: while the weights flip between sets A and B, every forward call from every thread
// returns exactly A's outputs or exactly B's, and reports the version of the set it used.
TEST_CASE(concurrent_forwards_see_old_or_new_weights_never_a_mix) {
  Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const Batch batch = make_batch(32, /*seed=*/3);
  const TensorMap state_a = archive_state();
  const TensorMap state_b = other_state(state_a);
  std::vector<at::Tensor> ordered_b;
  for (const auto& name : policy.state_names()) ordered_b.push_back(state_b.at(name));
  policy.warmup(batch.obs, batch.rnn_states, 3);

  // Even versions carry A, odd versions B.
  const TensorMap reference_a = policy.forward(batch.obs, batch.rnn_states, true).outputs;
  policy.update_weights(state_b, 1);
  const TensorMap reference_b = policy.forward(batch.obs, batch.rnn_states, true).outputs;
  EXPECT(!same_outputs(reference_a, reference_b));

  std::atomic<std::int64_t> wrong_outputs{0};
  std::atomic<std::int64_t> version_went_back{0};
  std::atomic<std::int64_t> impossible_versions{0};
  std::atomic<std::int64_t> calls{0};
  std::atomic<std::int64_t> calls_with_a{0};
  std::atomic<std::int64_t> calls_with_b{0};
  std::int64_t version = 1;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&](std::stop_token stop) {
        std::int64_t last_version = -1;
        while (!stop.stop_requested()) {
          const PolicyOutput result = policy.forward(batch.obs, batch.rnn_states, true);
          const bool is_a = result.policy_version % 2 == 0;
          if (!same_outputs(result.outputs, is_a ? reference_a : reference_b)) wrong_outputs.fetch_add(1);
          // One thread's successive calls must not go back to older weights.
          if (result.policy_version < last_version) version_went_back.fetch_add(1);
          last_version = result.policy_version;
          (is_a ? calls_with_a : calls_with_b).fetch_add(1);
          calls.fetch_add(1);
        }
      });
    }
    threads.emplace_back([&](std::stop_token stop) {  // a concurrent reader of version() alone
      while (!stop.stop_requested()) {
        if (policy.version() < 1) impossible_versions.fetch_add(1);
        std::this_thread::yield();
      }
    });

    const auto deadline = std::chrono::steady_clock::now() + 1500ms;
    while (std::chrono::steady_clock::now() < deadline || version < 40) {
      ++version;
      if (version % 2 == 0) {
        policy.update_weights(state_a, version);
      } else {
        policy.update_weights_list(ordered_b, version);
      }
      EXPECT(policy.version() == version);
      std::this_thread::sleep_for(1ms);  // let readers run between flips (2 cores)
    }
  }  // stop requested and every thread joined here
  EXPECT_MSG(wrong_outputs.load() == 0, std::to_string(wrong_outputs.load()) + " torn outputs");
  EXPECT(version_went_back.load() == 0);
  EXPECT(impossible_versions.load() == 0);
  EXPECT(calls_with_a.load() > 0 && calls_with_b.load() > 0);
  std::printf("  %lld forward calls (%lld with A, %lld with B) across %lld weight updates\n",
              static_cast<long long>(calls.load()), static_cast<long long>(calls_with_a.load()),
              static_cast<long long>(calls_with_b.load()), static_cast<long long>(version - 1));
}

TEST_CASE(forward_works_from_fresh_threads_and_policies_outlive_them) {
  const Batch batch = make_batch(4);
  for (int round = 0; round < 3; ++round) {
    const Policy policy(discrete_archive(), c10::Device(c10::kCPU));
    std::atomic<int> successes{0};
    {
      std::vector<std::jthread> threads;
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
          if (policy.forward(batch.obs, batch.rnn_states, false).outputs.size() == 5) successes.fetch_add(1);
        });
      }
    }  // joined before the policy goes out of scope
    EXPECT(successes.load() == 4);
  }
}

// Intra-op parallelism inside concurrent forward calls (the OpenMP pool of libtorch) must work too.
TEST_CASE(concurrent_forwards_with_intra_op_threads) {
  const Policy policy(discrete_archive(), c10::Device(c10::kCPU));
  const Batch batch = make_batch(4096);
  const int previous_threads = at::get_num_threads();
  at::set_num_threads(2);
  std::atomic<int> successes{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 5; ++i) {
          const PolicyOutput result = policy.forward(batch.obs, batch.rnn_states, i % 2 == 0);
          if (result.outputs.at("values").size(0) == 4096) successes.fetch_add(1);
        }
      });
    }
  }
  at::set_num_threads(previous_threads);
  EXPECT(successes.load() == 10);
}

// One intra-op thread: the tests run their own threads, and results must not depend on thread count.
TEST_SUITE_SETUP() { at::set_num_threads(1); }
