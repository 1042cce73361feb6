// A minimal test harness for the standalone C++ tests (no test framework is available offline).
// (EXPECT, not CHECK: c10/util/Logging.h already defines a CHECK macro.)
//
//   TEST_CASE(name) { EXPECT(a == b); EXPECT_THROWS(f(), std::invalid_argument, "part of the message"); }
//   int main(int argc, char** argv) { return pysf::test::run_all_tests(); }
//
// A failed EXPECT records the failure and lets the test continue; an exception escaping a test fails it.
// EXPECT may be used from any thread. The last line printed is "N passed, M failed"; the exit status is
// non-zero when anything failed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pysf::test {

using TestFunction = void (*)();

inline std::vector<std::pair<const char*, TestFunction>>& registry() {
  static std::vector<std::pair<const char*, TestFunction>> tests;
  return tests;
}

inline bool register_test(const char* name, TestFunction function) {
  registry().emplace_back(name, function);
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

inline int run_all_tests() {
  int passed = 0;
  int failed = 0;
  for (const auto& [name, function] : registry()) {
    current_failures().store(0);
    std::printf("[ RUN  ] %s\n", name);
    std::fflush(stdout);
    const auto start = std::chrono::steady_clock::now();
    try {
      function();
    } catch (const std::exception& error) {
      report_failure(__FILE__, __LINE__, std::string("unexpected exception: ") + error.what());
    } catch (...) {
      report_failure(__FILE__, __LINE__, "unexpected non-standard exception");
    }
    const auto elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    const bool ok = current_failures().load() == 0;
    (ok ? passed : failed) += 1;
    std::printf("[ %s ] %s (%lld ms)\n", ok ? " OK " : "FAIL", name, static_cast<long long>(elapsed_ms));
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace pysf::test

#define PYSF_TEST_CONCAT_INNER(a, b) a##b
#define PYSF_TEST_CONCAT(a, b) PYSF_TEST_CONCAT_INNER(a, b)

#define TEST_CASE(name)                                                                                   \
  static void name();                                                                                     \
  [[maybe_unused]] static const bool PYSF_TEST_CONCAT(name, _registered) = ::pysf::test::register_test(#name, &name); \
  static void name()

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
