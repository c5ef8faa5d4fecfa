#pragma once
// The one Llama model type, whichever of the four sources it came from (llama2.c .bin, GGUF, HF safetensors,
// bnb-4bit HF checkpoint). Frozen base linears are either plain (f32) or NF4 (quantized at load, or read from a
// bnb-4bit file as is); embeddings, norms and the output head are f32 (FrozenTensor: deferred when loaded so). The q/k row layout is recorded instead of
// normalised: plain weights are brought to the interleaved layout at load (exact row permutation), while NF4
// weights read from bnb-4bit keep HF's rotate_half rows (permuting quantized blocks would re-quantize them), and
// RoPE runs in whichever layout the model records.
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "host/core/nf4_quantize.h"
#include "host/core/op/rope.h"
#include "host/core/tensor.h"
#include "host/model/frozen_tensor.h"
#include "host/model/llama_config.h"

namespace pocketlora {


// How the frozen base linears are held once loaded.
enum class BaseQuant { None /* f32 */, Nf4 /* bnb-exact NF4 with double quantization */ };
BaseQuant parse_base_quant(const std::string& s);  // "none"/"f32" or "nf4"

// A frozen linear y = x·Wᵀ with W [out, in]: `plain` (f32) or `nf4` holds its values — or, deferred, neither
// does yet: `make` converts it from the mapped checkpoint when it is uploaded (upload_llama), one linear at a time,
// so the converted base never exists on the host as a whole and, on a GPU, not at all after upload
// (docs/MEMORY.md). A deferred linear knows its shape and kind without its values (the memory planner needs no
// more).
struct BaseLinear {
  Tensor plain;
  std::optional<Nf4Quantized> nf4;
  std::function<BaseLinear()> make;  // deferred: returns this linear with `plain` or `nf4` set
  Shape deferred_shape;
  bool deferred_nf4 = false, deferred_double_quant = true;

  bool is_deferred() const { return !nf4 && !plain.defined() && static_cast<bool>(make); }
  bool is_nf4() const { return nf4.has_value() || (is_deferred() && deferred_nf4); }
  const Shape& shape() const { return nf4 ? nf4->shape : is_deferred() ? deferred_shape : plain.shape(); }
  // This linear with its values (runs `make` when deferred); a copy of the held values otherwise.
  BaseLinear materialized() const;
};

struct LlamaLayer {
  FrozenTensor attn_norm, ffn_norm;               // f32 [dim]
  BaseLinear wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct LlamaModel {
  LlamaConfig config;
  ModelSource source = ModelSource::Llama2c;
  BaseQuant quant = BaseQuant::None;
  RopeLayout rope_layout = RopeLayout::Interleaved;  // the row layout of wq/wk
  FrozenTensor tok_embeddings;                       // f32 [vocab, dim]
  FrozenTensor norm;                                 // f32 [dim]
  FrozenTensor output;                               // f32 [vocab, dim]; same_as(tok_embeddings) if tied
  std::vector<LlamaLayer> layers;
};

// How load_llama_model holds the frozen weights. Resident: each linear converted (and quantized) at load, the
// table, head and norms read to f32. Deferred: each linear a BaseLinear::make and the table, head and norms
// FrozenTensor readers over the mapped file, converted when uploaded — what the trainer, generation and evaluation
// use, so that host memory holds at most one linear's conversion or one table chunk at a time. Headers, shapes and
// dtypes are validated at load either way; a deferred linear's values (e.g. a NaN refused by NF4 quantization) at
// upload.
enum class BaseLoad { Resident, Deferred };

// Loads any of the four sources (detected from the path); `quant` chooses how plain base linears are held (a
// bnb-4bit checkpoint is NF4 whatever `quant` says). Tensors are converted one at a time from the mapped file
// (never the whole model in f32). Errors name the file and the tensor.
LlamaModel load_llama_model(const std::filesystem::path& path, BaseQuant quant = BaseQuant::None,
                            BaseLoad load = BaseLoad::Resident);

// A deferred model `m` with its plain base linears held as `quant`: the same readers of the same mapped file, so
// a caller that has the model open (a C API pl_model) trains on it without opening the file again. A plain base
// asked for as NF4 is quantized at conversion exactly as load_llama_model(path, Nf4) quantizes it; a bnb-4bit
// checkpoint is NF4 whatever `quant` says, as for the loader. nullopt where that cannot be done: an NF4 base
// asked for as f32, or a linear already resident (converting it again would copy it).
std::optional<LlamaModel> with_base_quant(const LlamaModel& m, BaseQuant quant);

}  // namespace pocketlora
