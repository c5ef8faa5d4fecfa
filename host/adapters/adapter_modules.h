#pragma once
// The seven adapted linears of a Llama layer, as every adapter format and the merge name them: the project name
// ("q" ... "down", the adapter tensors "layers.{i}.{name}.{A|B}"), PEFT's module path and target_modules entry,
// llama.cpp's GGUF tensor name and LlamaWeights' name. Also each linear's shape and the q/k row order of its outputs.
#include <cstdint>
#include <string>
#include <utility>

#include "host/core/op/rope.h"
#include "host/core/tensor.h"
#include "host/model/llama_config.h"

namespace pocketlora {

struct AdapterModule {
  const char* name;       // project name: q, k, v, o, gate, up, down
  const char* peft_path;  // under model.layers.{i}.: self_attn.q_proj, ...
  const char* hf;         // PEFT's target_modules entry: q_proj, ...
  const char* gguf;       // llama.cpp's tensor under blk.{i}.: attn_q, attn_k, attn_v, attn_output, ffn_gate, ...
  const char* weights;    // LlamaWeights' name under layers.{i}.: attention.wq, ..., feed_forward.w2
};
inline constexpr AdapterModule kAdapterModules[] = {
    {"q", "self_attn.q_proj", "q_proj", "attn_q", "attention.wq"},
    {"k", "self_attn.k_proj", "k_proj", "attn_k", "attention.wk"},
    {"v", "self_attn.v_proj", "v_proj", "attn_v", "attention.wv"},
    {"o", "self_attn.o_proj", "o_proj", "attn_output", "attention.wo"},
    {"gate", "mlp.gate_proj", "gate_proj", "ffn_gate", "feed_forward.w1"},
    {"up", "mlp.up_proj", "up_proj", "ffn_up", "feed_forward.w3"},
    {"down", "mlp.down_proj", "down_proj", "ffn_down", "feed_forward.w2"}};

const AdapterModule* adapter_module_named(const std::string& name);  // nullptr when unknown

// "layers.3.q" and its tensors "layers.3.q.A" / "layers.3.q.B".
std::string adapter_module_name(std::int64_t layer, const std::string& module);
std::string adapter_tensor_name(std::int64_t layer, const std::string& module, char ab);

// {out, in} of the linear `module` in a model of config c.
std::pair<std::int64_t, std::int64_t> adapter_linear_shape(const LlamaConfig& c, const std::string& module);

// A tensor whose rows are the output features of linear `module` (its W [out, in], or an adapter's B [out, r])
// with the rows moved from layout `from` to `to` (q and k only: their rows are RoPE pairs; the other linears and
// from == to return an f32 copy). A's columns are input features and never move.
Tensor linear_rows_to_layout(const Tensor& b, const LlamaConfig& c, const std::string& module, RopeLayout from,
                      RopeLayout to);

}  // namespace pocketlora
