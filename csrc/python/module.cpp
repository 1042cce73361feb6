// The pysf._C extension module: the only place where pybind11 meets the native core.
#include <torch/csrc/utils/pybind.h>

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "pysf native core (LibTorch): inference, buffers, envs, sampler";
}
