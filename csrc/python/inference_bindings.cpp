// Bindings for pysf::inference::Policy. Conversion and GIL handling only; the behaviour is in csrc/inference.
#include <torch/csrc/utils/pybind.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "inference/policy.h"
#include "core/tensor_map.h"
#include "python/bindings.h"

namespace py = pybind11;
using pysf::inference::Policy;
using pysf::core::TensorMap;

namespace pybind11::detail {

/// dict[str, torch.Tensor] <-> TensorMap (order preserved both ways; tensors are shared, not copied).
template <>
struct type_caster<TensorMap> {
  PYBIND11_TYPE_CASTER(TensorMap, const_name("dict[str, torch.Tensor]"));

  bool load(handle source, bool /*convert*/) {
    if (!PyDict_Check(source.ptr())) return false;
    const auto items = reinterpret_borrow<dict>(source);
    TensorMap map;
    map.reserve(items.size());
    for (const auto& [key, item] : items) {
      make_caster<at::Tensor> tensor;
      if (!PyUnicode_Check(key.ptr()) || !tensor.load(item, false)) return false;
      map.insert_or_assign(key.cast<std::string>(), cast_op<at::Tensor&&>(std::move(tensor)));
    }
    value = std::move(map);
    return true;
  }

  static handle cast(const TensorMap& map, return_value_policy /*policy*/, handle /*parent*/) {
    dict result;
    for (const auto& [name, tensor] : map) result[str(name)] = pybind11::cast(tensor);
    return result.release();
  }
};

}  // namespace pybind11::detail

namespace pysf::python {

void bind_inference(py::module_& module) {
  // Every method that runs torch work releases the GIL through call_guard: pybind converts the
  // arguments before the guard exists and the return value after it is gone, so Python objects are
  // only touched with the GIL held.
  using release_gil = py::call_guard<py::gil_scoped_release>;

  // shared_ptr holder: C++ components (e.g. an inference server) can co-own the policy Python created.
  py::class_<Policy, std::shared_ptr<Policy>>(module, "Policy", R"doc(
A TorchScript actor-critic run natively, callable concurrently from many threads.

Built from the bytes of ``torch.jit.save`` of a scripted module with
``forward(obs: Dict[str, Tensor], rnn_states: Tensor, deterministic: bool) -> Dict[str, Tensor]``.
Every call releases the GIL. ``forward`` runs with one consistent set of weights, old or new, while
``update_weights`` replaces them from another thread; it never waits for the update.
)doc")
      .def(py::init([](const py::bytes& archive, const py::object& device) {
             std::string archive_bytes = archive;
             const c10::Device parsed_device(py::str(device).cast<std::string>());
             py::gil_scoped_release no_gil;
             return std::make_shared<Policy>(archive_bytes, parsed_device);
           }),
           py::arg("archive"), py::arg("device") = "cpu",
           "Load the module (twice: one replica per weight generation) onto `device` (str or torch.device).")
      .def(
          "forward",
          [](const Policy& policy, const TensorMap& obs, const at::Tensor& rnn_states, bool deterministic) {
            auto [outputs, version] = policy.forward(obs, rnn_states, deterministic);
            return std::pair(std::move(outputs), version);
          },
          py::arg("obs"), py::arg("rnn_states"), py::arg("deterministic") = false, release_gil(),
          "Run one batch. Returns (outputs: dict[str, Tensor], policy_version: int), the version being "
          "that of the weights actually used. Outputs are normal (no-grad) tensors on the policy device.")
      .def("update_weights", &Policy::update_weights, py::arg("state"), py::arg("version"), release_gil(),
           "Replace every parameter and buffer (name -> tensor, e.g. a state_dict) and set the version. "
           "Raises ValueError naming missing/unexpected/mismatched entries; then nothing is applied.")
      .def("update_weights_list", &Policy::update_weights_list, py::arg("state"), py::arg("version"),
           release_gil(), "update_weights with the tensors in state_names() order.")
      .def_property_readonly("version", &Policy::version, "Version of the weights a new forward would use.")
      .def_property_readonly(
          "device", [](const Policy& policy) { return policy.device().str(); }, "Device of weights and outputs.")
      .def("state_names", &Policy::state_names, "Parameter then buffer names (dotted), update_weights_list order.")
      .def("warmup", &Policy::warmup, py::arg("obs"), py::arg("rnn_states"), py::arg("iterations") = 3,
           release_gil(), "Run a few forwards on every replica so the TorchScript executor is specialised.")
      .def("benchmark", &Policy::benchmark, py::arg("obs"), py::arg("rnn_states"), py::arg("iterations") = 100,
           py::arg("deterministic") = false, release_gil(),
           "Mean microseconds per forward over `iterations` calls made in a C++ loop (no warm-up).");
}

}  // namespace pysf::python
