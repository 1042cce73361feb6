// The pysf._C extension module: the only place where pybind11 meets the native core. Loading it also
// registers the torch.ops.pysf operators (csrc/ops/registration.cpp, no bindings needed: the dispatcher is
// their API).
#include <c10/util/Exception.h>
#include <torch/csrc/utils/pybind.h>

#include <exception>
#include <stdexcept>

#include "python/bindings.h"

namespace py = pybind11;

namespace {

// Maps native errors onto the Python exceptions a caller would expect. c10::Error's what() carries a
// C++ backtrace that means nothing to a Python user, so the message without it is used.
void translate_native_exception(std::exception_ptr error) {
  try {
    if (error) std::rethrow_exception(error);
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const c10::ValueError& e) {
    PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
  } catch (const c10::TypeError& e) {
    PyErr_SetString(PyExc_TypeError, e.what_without_backtrace());
  } catch (const c10::IndexError& e) {
    PyErr_SetString(PyExc_IndexError, e.what_without_backtrace());
  } catch (const c10::NotImplementedError& e) {
    PyErr_SetString(PyExc_NotImplementedError, e.what_without_backtrace());
  } catch (const c10::Error& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
  }
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pysf native core (LibTorch): inference, buffers, envs, sampler";
  py::register_local_exception_translator(&translate_native_exception);
  pysf::python::bind_inference(m);
  pysf::python::bind_buffers(m);
  pysf::python::bind_envs(m);
  pysf::python::bind_sampler(m);
}
