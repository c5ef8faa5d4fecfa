#pragma once
// What the adapter-format tests share: a tiny Llama config and tensors whose every element says where it is.
#include <cstdint>

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

}  // namespace pocketlora::test
