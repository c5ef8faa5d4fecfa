#pragma once
// The seven adapted linears of a Llama layer, as every adapter format and the merge name them: the project name
// ("q" ... "down", the adapter tensors "layers.{i}.{name}.{A|B}"), PEFT's module path and target_modules entry,
// and llama.cpp's GGUF tensor name. Also each linear's shape and the q/k row order of its B.
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
};
inline constexpr AdapterModule kAdapterModules[] = {
    {"q", "self_attn.q_proj", "q_proj", "attn_q"},       {"k", "self_attn.k_proj", "k_proj", "attn_k"},
    {"v", "self_attn.v_proj", "v_proj", "attn_v"},       {"o", "self_attn.o_proj", "o_proj", "attn_output"},
    {"gate", "mlp.gate_proj", "gate_proj", "ffn_gate"},  {"up", "mlp.up_proj", "up_proj", "ffn_up"},
    {"down", "mlp.down_proj", "down_proj", "ffn_down"}};

const AdapterModule* adapter_module_named(const std::string& name);  // nullptr when unknown

// "layers.3.q" and its tensors "layers.3.q.A" / "layers.3.q.B".
std::string adapter_module_name(std::int64_t layer, const std::string& module);
std::string adapter_tensor_name(std::int64_t layer, const std::string& module, char ab);

// {out, in} of the linear `module` in a model of config c.
std::pair<std::int64_t, std::int64_t> adapter_linear_shape(const LlamaConfig& c, const std::string& module);

// B [out, r] with its rows moved from layout `from` to `to` (q and k only: their rows are RoPE pairs; the other
// linears and from == to return an f32 copy). A's columns are input features and never move.
Tensor adapter_b_rows(const Tensor& b, const LlamaConfig& c, const std::string& module, RopeLayout from,
                      RopeLayout to);

}  // namespace pocketlora
