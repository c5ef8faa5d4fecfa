#pragma once
// The tiny Llama the model seeds are cut to (from stories260K: the leading rows/columns of its tensors), so a
// fuzz input that loads runs the whole load -> convert -> quantize path in microseconds. The safetensors and
// bnb-4bit targets write this config.json next to the fuzzed weights file.
#include <cstdint>

namespace pocketlora::fuzz {

struct TinyModel {
  static constexpr std::int32_t dim = 8, hidden_dim = 16, n_layers = 1, n_heads = 2, n_kv_heads = 1, vocab = 16,
                                seq_len = 16;
};

inline constexpr const char* kTinyConfigJson = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
  "num_key_value_heads": 1, "vocab_size": 16, "max_position_embeddings": 16, "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0, "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2,
  "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": true, "bnb_4bit_quant_type": "nf4",
                          "bnb_4bit_use_double_quant": true, "bnb_4bit_compute_dtype": "float16"}
})";

}  // namespace pocketlora::fuzz
