// A minimal test harness for the standalone C++ tests (no test framework is available offline).
// (EXPECT, not CHECK: c10/util/Logging.h already defines a CHECK macro.)
//
//   TEST_CASE(name) { EXPECT(a == b); EXPECT_THROWS(f(), std::invalid_argument, "part of the message"); }
//   TEST_SUITE_SETUP() { at::set_num_threads(1); }  // optional: runs before the file's first test
//
// Every tests/cpp/test_*.cpp is one suite, named after its file (test_policy); all of them link into one
// executable (tests/cpp/main.cpp), so that torch's headers are compiled once for all of them, not per file.
// `pysf_cpp_tests SUITE` runs one suite, as each ctest entry does; without an argument it runs every suite.
//
// A failed EXPECT records the failure and lets the test continue; an exception escaping a test fails it.
// EXPECT may be used from any thread. The last line printed is "N passed, M failed"; the exit status is
// non-zero when anything failed.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pysf::test {

using TestFunction = void (*)();

/// The suite of a source file: its name without directory and extension (".../test_policy.cpp" -> "test_policy").
inline std::string suite_of(std::string_view file) {
  const std::size_t slash = file.find_last_of('/');
  if (slash != std::string_view::npos) file.remove_prefix(slash + 1);
  return std::string(file.substr(0, file.find('.')));
}

struct RegisteredTest {
  std::string suite;
  const char* name;
  TestFunction function;
};

inline std::vector<RegisteredTest>& registry() {
  static std::vector<RegisteredTest> tests;
  return tests;
}

/// Each suite's TEST_SUITE_SETUP, if it has one.
inline std::vector<std::pair<std::string, TestFunction>>& suite_setups() {
  static std::vector<std::pair<std::string, TestFunction>> setups;
  return setups;
}

inline bool register_test(const char* file, const char* name, TestFunction function) {
  registry().push_back(RegisteredTest{suite_of(file), name, function});
  return true;
}

inline bool register_suite_setup(const char* file, TestFunction function) {
  suite_setups().emplace_back(suite_of(file), function);
  return true;
}

// Failures of the test currently running (EXPECTs in helper threads count for it too).
inline std::atomic<int>& current_failures() {
  static std::atomic<int> failures{0};
  return failures;
}

inline void report_failure(const char* file, int line, const std::string& what) {
  static std::mutex output_mutex;  // keep lines from concurrent threads whole
  const std::lock_guard lock(output_mutex);
  std::fprintf(stderr, "  %s:%d: FAILED: %s\n", file, line, what.c_str());
  current_failures().fetch_add(1);
}

/// Runs the tests of `suite` (every suite when empty), each suite's setup before its first test.
/// Returns 0 when all passed, 1 when any failed, 2 when `suite` names no tests.
inline int run_tests(std::string_view suite) {
  int passed = 0;
  int failed = 0;
  std::vector<std::string> suites_set_up;
  for (const auto& test : registry()) {
    if (!suite.empty() && test.suite != suite) continue;
    if (std::find(suites_set_up.begin(), suites_set_up.end(), test.suite) == suites_set_up.end()) {
      suites_set_up.push_back(test.suite);
      for (const auto& [setup_suite, setup] : suite_setups()) {
        if (setup_suite == test.suite) setup();
      }
    }
    current_failures().store(0);
    std::printf("[ RUN  ] %s.%s\n", test.suite.c_str(), test.name);
    std::fflush(stdout);
    const auto start = std::chrono::steady_clock::now();
    try {
      test.function();
    } catch (const std::exception& error) {
      report_failure(__FILE__, __LINE__, std::string("unexpected exception: ") + error.what());
    } catch (...) {
      report_failure(__FILE__, __LINE__, "unexpected non-standard exception");
    }
    const auto elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    const bool ok = current_failures().load() == 0;
    (ok ? passed : failed) += 1;
    std::printf("[ %s ] %s.%s (%lld ms)\n", ok ? " OK " : "FAIL", test.suite.c_str(), test.name,
                static_cast<long long>(elapsed_ms));
    std::fflush(stdout);
  }
  if (passed + failed == 0) {
    std::fprintf(stderr, "no tests in suite '%.*s'\n", static_cast<int>(suite.size()), suite.data());
    return 2;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace pysf::test

#define PYSF_TEST_CONCAT_INNER(a, b) a##b
#define PYSF_TEST_CONCAT(a, b) PYSF_TEST_CONCAT_INNER(a, b)

#define TEST_CASE(name)                                                                                   \
  static void name();                                                                                     \
  [[maybe_unused]] static const bool PYSF_TEST_CONCAT(name, _registered) =                               \
      ::pysf::test::register_test(__FILE__, #name, &name);                                                \
  static void name()

// (A unique function name per use: in a unity build several suites share one translation unit.)
#define TEST_SUITE_SETUP() PYSF_TEST_SUITE_SETUP(PYSF_TEST_CONCAT(pysf_test_suite_setup_, __COUNTER__))
#define PYSF_TEST_SUITE_SETUP(function)                                                                   \
  static void function();                                                                                 \
  [[maybe_unused]] static const bool PYSF_TEST_CONCAT(function, _registered) =                           \
      ::pysf::test::register_suite_setup(__FILE__, &function);                                            \
  static void function()

#define EXPECT(condition)                                                              \
  do {                                                                                \
    if (!(condition)) ::pysf::test::report_failure(__FILE__, __LINE__, #condition);   \
  } while (false)

// EXPECT with extra context (anything std::string can be built from) printed on failure.
#define EXPECT_MSG(condition, message)                                                                       \
  do {                                                                                                      \
    if (!(condition)) ::pysf::test::report_failure(__FILE__, __LINE__, std::string(#condition) + ": " + (message)); \
  } while (false)

// Checks that `expression` throws `exception_type` whose what() contains `substring`.
#define EXPECT_THROWS(expression, exception_type, substring)                                                  \
  do {                                                                                                       \
    try {                                                                                                    \
      (void)(expression);                                                                                    \
      ::pysf::test::report_failure(__FILE__, __LINE__, std::string(#expression) + " did not throw");         \
    } catch (const exception_type& error) {                                                                  \
      if (std::string(error.what()).find(substring) == std::string::npos) {                                  \
        ::pysf::test::report_failure(__FILE__, __LINE__,                                                     \
                                     std::string(#expression) + " threw '" + error.what() +                  \
                                         "', expected it to mention '" + (substring) + "'");                 \
      }                                                                                                      \
    }                                                                                                        \
  } while (false)
