#pragma once
// What the adapter-format tests share: a tiny Llama config and tensors whose every element says where it is.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "host/adapters/peft_export.h"
#include "host/core/tensor.h"
#include "host/model/llama_config.h"

namespace pocketlora::test {

// 2 layers, 2 query heads and 1 kv head of dim `head_dim`, dim 2·head_dim, MLP 3·head_dim, vocabulary 16.
inline LlamaConfig tiny_llama_config(std::int64_t head_dim = 4) {
  LlamaConfig c;
  c.dim = 2 * head_dim, c.hidden_dim = 3 * head_dim, c.n_layers = 2, c.n_heads = 2, c.n_kv_heads = 1;
  c.head_dim = head_dim, c.vocab_size = 16, c.max_seq_len = 32;
  return c;
}

// Element (row, col) of tensor `salt` = salt·1000 + row·10 + col + `frac`: every row is recognisable after a
// permutation (a fraction such as 0.25 also needs more than an integer's bits, e.g. to catch an f16 round trip).
inline Tensor labelled(Shape shape, int salt, float frac = 0.0f) {
  Tensor t = Tensor::zeros(shape);
  for (std::int64_t r = 0; r < shape[0]; ++r)
    for (std::int64_t c = 0; c < shape[1]; ++c)
      t.data<float>()[r * shape[1] + c] = float(salt * 1000 + r * 10 + c) + frac;
  return t;
}

// The tensor `name` of `a` (std::runtime_error naming it when absent).
inline const Tensor& find(const PeftAdapter& a, const std::string& name) {
  for (const auto& [n, t] : a.tensors)
    if (n == name) return t;
  throw std::runtime_error("no tensor " + name);
}

// `a` and `b` hold the same tensors, shape and bytes.
inline void expect_same_tensors(const PeftAdapter& a, const PeftAdapter& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [n, t] : a.tensors) {
    const Tensor& u = find(b, n);
    ASSERT_EQ(t.shape(), u.shape()) << n;
    EXPECT_EQ(std::memcmp(t.raw(), u.raw(), t.nbytes()), 0) << n;
  }
}

}  // namespace pocketlora::test
