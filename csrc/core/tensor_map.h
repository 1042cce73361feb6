// TensorMap: the named-tensor container that crosses the policy boundary (observations in, outputs out).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pysf::core {

/// An insertion-ordered map from names to tensors, stored as a flat vector of (name, tensor) pairs.
///
/// Policies exchange a handful of entries per call (obs keys in, ~5 outputs out), thousands of times a
/// second. At that size a linear scan over contiguous pairs beats hashing, needs one allocation instead
/// of one per node, and keeps the order the producer chose (the model's output order), which makes
/// iteration deterministic.
///
/// Value semantics: copying a TensorMap copies the names and the tensor handles (tensors share storage,
/// like copying an at::Tensor). Not synchronised: share one between threads only for reading.
class TensorMap {
 public:
  using value_type = std::pair<std::string, at::Tensor>;
  using const_iterator = std::vector<value_type>::const_iterator;

  TensorMap() = default;
  TensorMap(std::initializer_list<value_type> entries) {
    entries_.reserve(entries.size());
    for (const auto& [name, tensor] : entries) insert_or_assign(name, tensor);
  }

  void reserve(std::size_t capacity) { entries_.reserve(capacity); }

  /// Sets `name` to `tensor`, replacing an existing entry in place (its position is kept).
  void insert_or_assign(std::string name, at::Tensor tensor) {
    if (at::Tensor* existing = find(name)) {
      *existing = std::move(tensor);
      return;
    }
    entries_.emplace_back(std::move(name), std::move(tensor));
  }

  /// The tensor called `name`, or nullptr when there is none.
  [[nodiscard]] const at::Tensor* find(std::string_view name) const {
    for (const auto& entry : entries_) {
      if (entry.first == name) return &entry.second;
    }
    return nullptr;
  }
  [[nodiscard]] at::Tensor* find(std::string_view name) {
    return const_cast<at::Tensor*>(std::as_const(*this).find(name));
  }

  /// The tensor called `name`; throws std::out_of_range naming the key when there is none.
  [[nodiscard]] const at::Tensor& at(std::string_view name) const {
    if (const at::Tensor* tensor = find(name)) return *tensor;
    throw std::out_of_range("TensorMap has no entry named '" + std::string(name) + "'");
  }

  [[nodiscard]] bool contains(std::string_view name) const { return find(name) != nullptr; }
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  [[nodiscard]] const_iterator begin() const { return entries_.begin(); }
  [[nodiscard]] const_iterator end() const { return entries_.end(); }

 private:
  std::vector<value_type> entries_;
};

}  // namespace pysf::core
