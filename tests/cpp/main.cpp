// The one executable of the standalone C++ tests (check.h): `pysf_cpp_tests [SUITE]` runs the tests of one
// tests/cpp/test_*.cpp file, named without its extension (test_policy), or every suite without an argument.
#include <cstdio>

#include "check.h"

int main(int argc, char** argv) {
  if (argc > 2) {
    std::fprintf(stderr, "usage: %s [SUITE]   (SUITE: a tests/cpp/test_*.cpp file's name, e.g. test_policy)\n",
                 argv[0]);
    return 2;
  }
  return pysf::test::run_tests(argc == 2 ? argv[1] : "");
}
