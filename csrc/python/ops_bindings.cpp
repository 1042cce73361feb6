// Bindings for the learner's return/advantage ops (csrc/ops) as pysf._C.ops. Conversion and GIL handling
// only; the behaviour and the full contract are in csrc/ops/gae.h and csrc/ops/vtrace.h.
#include <torch/csrc/utils/pybind.h>

#include <tuple>

#include "ops/gae.h"
#include "ops/vtrace.h"
#include "python/bindings.h"

namespace py = pybind11;
using pysf::ops::Implementation;

namespace {

Implementation implementation_for(bool force_generic) {
  return force_generic ? Implementation::Generic : Implementation::Auto;
}

}  // namespace

namespace pysf::python {

void bind_ops(py::module_& module) {
  // The ops run without the GIL: pybind converts the arguments before the guard exists and the results
  // after it is gone, so Python objects are only touched with the GIL held.
  using release_gil = py::call_guard<py::gil_scoped_release>;

  py::module_ ops = module.def_submodule(
      "ops", "The learner's return/advantage ops (GAE, V-trace): fast CPU loops, ATen ops on other devices.");

  ops.def(
      "gae_advantages",
      [](const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values, const at::Tensor& valids,
         double gamma, double gae_lambda, bool force_generic) {
        return pysf::ops::gae_advantages(rewards, dones, values, valids, gamma, gae_lambda,
                                         implementation_for(force_generic));
      },
      py::arg("rewards"), py::arg("dones"), py::arg("values"), py::arg("valids"), py::arg("gamma"),
      py::arg("gae_lambda"), py::kw_only(), py::arg("force_generic") = false, release_gil(),
      "Sample Factory's GAE with invalid steps. rewards [N, T], dones [N, T] (bool or 0/1), values [N, T+1] "
      "(column T: bootstrap), valids [N, T+1] (bool or 0/1), one device. Returns float32 advantages [N, T]. "
      "force_generic runs the device-generic ATen implementation on CPU too. Raises ValueError for bad "
      "arguments.");

  ops.def(
      "vtrace",
      [](const at::Tensor& ratios, const at::Tensor& rewards, const at::Tensor& dones, const at::Tensor& values,
         double gamma, double vtrace_rho, double vtrace_c, bool force_generic) {
        pysf::ops::VTraceResult result = pysf::ops::vtrace(ratios, rewards, dones, values, gamma, vtrace_rho,
                                                           vtrace_c, implementation_for(force_generic));
        return std::make_tuple(std::move(result.vs), std::move(result.advantages));
      },
      py::arg("ratios"), py::arg("rewards"), py::arg("dones"), py::arg("values"), py::arg("gamma"),
      py::arg("vtrace_rho"), py::arg("vtrace_c"), py::kw_only(), py::arg("force_generic") = false, release_gil(),
      "Sample Factory's V-trace per trajectory of T = recurrence steps. ratios, rewards, dones (bool or 0/1), "
      "values (current network, no bootstrap column): [N, T], one device. Returns float32 (vs, advantages), "
      "each [N, T]. force_generic runs the device-generic ATen implementation on CPU too. Raises ValueError "
      "for bad arguments.");
}

}  // namespace pysf::python
