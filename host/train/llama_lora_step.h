#pragma once
// The Llama forward WITH LoRA and its hand-written backward (llm.c style: each layer's backward next to its
// forward, in reverse order), written once over the Backend interface. Only the LoRA tensors train: the backward
// computes dA and dB of every adapted linear and carries dX through the frozen (f32 or NF4) base linears;
// embeddings, norms and the head get no gradient.
//
// A batch is B sequences of S tokens laid out as [B*S, ...]; positions are per sequence (0..S-1 unless written
// otherwise) and attention runs once per sequence on view_rows of the batch (optionally with segment ids for
// packed documents). The step is recorded in two halves with the loss between them:
//     be.begin(); step.record_forward(); <loss: logits -> dlogits>; step.record_backward(); be.end(); be.run();
// record_forward ends at logits; record_backward starts from dlogits (the gradient of the loss with respect to the
// logits, which the loss op or the caller writes). For a large vocabulary the output head runs in chunks of
// opt.logits_rows rows so that [B*S, vocab] logits never exist at once:
//     record_body_forward(); for each chunk c { record_head_forward(c); <loss of chunk c>; record_head_backward(c); }
//     record_body_backward();
// On Vulkan each per-sequence view starts at a multiple of S rows: S * 4 bytes (segment ids) and S * heads * 4
// (lse) must meet the device's minStorageBufferOffsetAlignment (any S that is a multiple of 64 does), and so must
// logits_rows * dim * 4 for the head chunks, else the constructor throws DeviceLimitError naming the tensor.
// Activations dtype = BackendLlama::activations (f32; f64 on the CPU backend for gradient checks), LoRA tensors
// likewise; the embedding table and the head may be stored f16 (upload_llama's table_dtype).
#include <array>
#include <map>
#include <cstdint>
#include <optional>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/llama_forward.h"
#include "host/train/lora_adapter.h"

namespace pocketlora {

// One adapted linear on a backend: weights and their gradients (same shapes), all Lifetime::Weights.
struct BackendLoraModule {
  BTensor a, b, da, db;
  float scale = 1.0f;  // this module's alpha / r (per-module rank/alpha of PEFT's patterns included)
  explicit operator bool() const { return static_cast<bool>(a); }
};

struct BackendLora {
  LoraConfig config;
  std::vector<std::array<BackendLoraModule, kLoraTargetCount>> layers;  // a == 0 where not adapted
  const BackendLoraModule& at(std::size_t layer, LoraTarget t) const {
    return layers.at(layer)[static_cast<std::size_t>(t)];
  }
};

// Uploads A and B as `dtype` (the model's activation dtype) with zeroed gradients; checks every module's shapes
// against the model (ShapeError naming the module).
BackendLora upload_lora(Backend& be, const BackendLlama& m, const LoraAdapter& adapter);
// Writes the adapter's A and B into the backend tensors (after an optimizer step on the host, or a perturbation).
void write_lora(Backend& be, const BackendLora& lora, const LoraAdapter& adapter);
// The gradients as an adapter-shaped copy: module.a holds dA, module.b holds dB (dtype of the backend tensors).
LoraAdapter read_lora_grads(Backend& be, const BackendLora& lora, const LoraAdapter& like);

struct LoraStepOptions {
  std::int64_t batch = 1, seq_len = 0;
  bool segments = false;          // packed windows: segment ids [B*S] restrict attention within a document
  bool accumulate_grads = false;  // dA/dB += this micro-batch's gradients; otherwise the backward zeroes them first
  // LoRA dropout seed: the recorded ops read the key (seed, step, micro-batch) from dropout_key(), so a new mask
  // per step needs only write_dropout_key; the stream is per layer and target (see lora_stream).
  std::uint64_t dropout_seed = 0;
  std::int64_t logits_rows = 0;  // rows per output-head chunk (logits, dlogits); 0: all B*S; must divide B*S
  // Gradient checkpointing: the forward keeps only each layer's input; the backward of layer l first recomputes
  // layer l's forward into one set of activations shared by all layers, then runs its backward. Same gradients
  // (the recomputation repeats the same ops on the same inputs with the same dropout key) for about one more
  // forward of compute, and the activations of one layer instead of all of them.
  bool checkpointing = false;
  // Storage of the activations and the LoRA compute inputs (norm outputs, q/k/v, attention out, gate/up/swiglu,
  // LoRA T and their gradients): unset, the model's dtype (f32; f64 in gradient checks), or f16 (mixed precision,
  // docs/MIXED_PRECISION.md). Either way the residual stream and its gradient, rstd, lse, logits and dlogits keep
  // the model's dtype, as do LoRA A/B and dA/dB (upload_lora), and every op accumulates in f32 or wider.
  std::optional<DType> activations;
};

// The dropout stream of (layer, target): distinct masks for every adapted linear, the same in forward and backward.
std::uint32_t lora_stream(std::int64_t layer, LoraTarget t);

class LlamaLoraStep {
 public:
  // Allocates the step's inputs, activations and gradients (Lifetime::Step) and the per-sequence views. The
  // model and lora must outlive the step.
  LlamaLoraStep(Backend& be, const BackendLlama& m, const BackendLora& lora, const LoraStepOptions& opt);

  // Inputs (write before run()): token ids i32 [B*S]; positions i32 [B*S], initialised to 0..S-1 per sequence;
  // segment ids i32 [B*S] when opt.segments.
  const BTensor& ids() const { return ids_; }
  const BTensor& positions() const { return positions_; }
  const BTensor& segments() const { return segments_; }
  // The LoRA dropout key, i32 [kLoraKeyWords], (dropout_seed, 0, 0) until written: every forward and backward of
  // a run reads it, so they share one mask; write a new (step, micro-batch) before each run for a new mask.
  const BTensor& dropout_key() const { return dropout_key_; }
  void write_dropout_key(std::uint32_t step, std::uint32_t micro);
  // [logits_rows, vocab]: the head chunk record_head_forward writes and record_head_backward reads.
  const BTensor& logits() const { return logits_; }
  const BTensor& dlogits() const { return dlogits_; }
  std::int64_t tokens() const { return opt_.batch * opt_.seq_len; }
  std::int64_t head_chunks() const { return static_cast<std::int64_t>(head_xn_.size()); }

  // The whole step with the head in one chunk (InvalidArgument when logits_rows makes several).
  void record_forward();
  void record_backward();
  // The same in parts: embedding .. final norm; the head on rows [c * logits_rows, (c + 1) * logits_rows);
  // its backward (dlogits -> d final norm out); the rest of the backward (zeroing dA/dB unless accumulating).
  // dropout false: the LoRA input dropout is off (evaluation, as PEFT's model.eval()).
  void record_body_forward(bool dropout = true);
  void record_head_forward(std::int64_t chunk);
  void record_head_backward(std::int64_t chunk);
  void record_body_backward();

 private:
  // What the backward of one layer needs, saved by its forward.
  struct LayerActivations {
    BTensor x_in;                   // [N, dim] residual stream entering the layer
    BTensor xn_attn, rstd_attn;     // attention RMSNorm output [N, dim] and 1/rms [N]
    BTensor q, k, v;                // [N, heads*hd] / [N, kv*hd], q and k after RoPE
    BTensor att, lse;               // attention output [N, heads*hd], log-sum-exp [N, heads]
    BTensor x_mid;                  // [N, dim] residual after attention
    BTensor xn_ffn, rstd_ffn;       // MLP RMSNorm
    BTensor g, u, h;                // [N, hidden] gate, up, silu(g)*u
    std::array<BTensor, kLoraTargetCount> lora_t;  // T = drop(x)·Aᵀ [N, r] of each adapted linear
  };
  // Per-sequence views (view_rows) of a [N, heads, hd] tensor, one per sequence.
  std::vector<BTensor> per_sequence(const BTensor& t, const Shape& shape3);
  void linear_lora_forward(std::size_t layer, LoraTarget t, const BTensor& x, const BackendLinear& w,
                           const BTensor& y, const BTensor& lora_t, bool dropout);
  // dx (+)= dy·W + LoRA's dX (accumulate_dx for the second and later linears reading the same x); dA, dB.
  void linear_lora_backward(std::size_t layer, LoraTarget t, const BTensor& x, const BackendLinear& w,
                            const BTensor& lora_t, const BTensor& dy, const BTensor& dx, bool accumulate_dx);
  // The activations of `layer`: its own, or with checkpointing the shared set with the layer's own x_in.
  LayerActivations layer_acts(std::size_t layer) const;
  // One layer's forward from its x_in; `recompute`: for the backward (checkpointing), which needs the saved
  // activations and LoRA T but not the layer's output, so the output is not written.
  void record_layer_forward(std::size_t layer, bool dropout, bool recompute);
  void attention_forward(std::size_t layer);
  void attention_backward(std::size_t layer);
  LoraOptions lora_options(std::size_t layer, LoraTarget t, bool dropout) const;

  Backend& be_;
  const BackendLlama& m_;
  const BackendLora& lora_;
  LoraStepOptions opt_;
  BTensor ids_, positions_, segments_, rope_table_, dropout_key_;
  std::vector<LayerActivations> acts_;  // per layer; with checkpointing only x_in is allocated
  LayerActivations shared_acts_;        // checkpointing: every other activation, reused by each layer
  // checkpointing: the LoRA T of (target, rank), shared by the layers whose module has that rank
  std::map<std::pair<LoraTarget, std::int64_t>, BTensor> shared_lora_t_;
  BTensor x_final_, xn_final_, rstd_final_, logits_, dlogits_;
  std::vector<BTensor> head_xn_, head_dxn_;  // per head chunk: rows of xn_final_ and of dxn_
  // Backward scratch: gradients of the residual stream and of each layer's intermediates, reused by every layer.
  BTensor dx_, dx_mid_, dxn_, dnorm_x_, dnorm_w_, dq_, dk_, dv_, datt_, dg_, du_, dh_;
  // The o / down projections' outputs before the residual add: dx_mid_ itself when activations are f32 (free
  // until the backward), else an f16 buffer. f16 only: dres_ holds a residual gradient (f32) converted to f16
  // for the o / down backward, whose dY must share dX's dtype in the NF4 kernels.
  BTensor proj_, dres_;
  bool mixed_ = false;  // activations stored in another dtype than the model's
  // dy for the o / down backward from the f32 residual gradient `dr`: dr itself, or (f16) dr converted into dres_.
  const BTensor& residual_grad_input(const BTensor& dr);
  // Attention's views of one layer: q, k (and their gradients) as [N, heads, hd] for RoPE, and per sequence.
  struct SequenceViews {
    BTensor q3, k3, dq3, dk3;
    std::vector<BTensor> q, k, v, att, lse, dq, dk, dv, datt, segments;
  };
  // Per layer (q, k, v, att, lse differ per layer; gradients are shared); with checkpointing one, of shared_acts_.
  std::vector<SequenceViews> views_;
  const SequenceViews& layer_views(std::size_t layer) const { return views_[opt_.checkpointing ? 0 : layer]; }
};

}  // namespace pocketlora
