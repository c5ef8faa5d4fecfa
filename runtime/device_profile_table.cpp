// The vendor profile table. Keys are matched against the device: "vendor_id" (PCI/Khronos vendor id),
// optional "device_type" and "name_contains". Later, more specific entries win. Values are integers (flags 0/1).
//
// Why these numbers:
// - lavapipe (llvmpipe): each invocation is a SIMD lane of an LLVM-JIT'ed CPU loop; shared memory + barriers
//   are emulated and measured ~20x slower than register tiling, so tiles live in registers and workgroups are
//   small (64 invocations = 8 lanes x 8 subgroups of the 256-bit build). Big per-invocation tiles (16x8) amortise
//   the per-workgroup cost: sweep at M=128, N=K=1024 gave 3.6 GFLOPS for 4x4, 7.4 for 8x8, 10.8 for 16x8.
//   NF4 (2048x2048, M=128): tiles 16x8 on an 8x4 workgroup 11 GFLOPS fwd vs 4.5 at 4x4; dX with 32 rows per
//   invocation 4.9 -> 8.3 GFLOPS once the codebook lookup became a select tree (a dynamically indexed constant
//   array compiles to a per-lane gather on llvmpipe).
//   loop_limit: llvmpipe (gallivm) silently leaves a shader's loops after 65535 iterations of one invocation
//   (found by the attention work; a 4x4x70000 GEMM returns garbage, 4x4x60000 is exact). Ops whose
//   per-invocation loop length grows with a tensor dimension split the work or refuse (host/ops/loop_limit.h).
// - attention (lavapipe, op bench): at head_dim 8-12 the lean variant beats the simple one (T^2 scratch) 1.5-2.5x
//   (traffic on the scratch ~T^2, compute ~T^2 * head_dim), at head_dim 64 the simple one wins; lean_rows 2
//   ~ 1 > 4 at head_dim 8 (T=256 fwd 2.47 / 2.48 / 3.59 ms). lavapipe's attention.loop_limit: gallivm caps the
//   loop-condition checks of one shader invocation, all loops together, at 65535 and silently leaves every loop
//   after that (lean dK/dV came out partial at T=130 with 8 query heads per kv head); variants that would exceed
//   it are not used.
// - Adreno: 64/128-wide waves, large register file per wave, prefers fp16 ALU; shared memory (GMEM-backed) is
//   fast but small; workgroups of 128.
// - Mali (Valhall): 16-wide warps, shared memory is ordinary cached memory (no speedup), so register tiling.
// - Xclipse (RDNA2-based): 32/64-wide, real LDS; shared-memory tiling pays off.
// - NVIDIA/AMD/Intel desktop: shared-memory tiling with large tiles.
// - nf4.shared_tiles (decode each W tile once per workgroup into shared memory) is on for NVIDIA, AMD and
//   Xclipse from standard practice on GPUs with real local memory; NOT measured here (no GPU was lent to the
//   session that wrote it) — confirm with `pocketlora bench nf4` and a profile override before trusting it.
// - memory.*: what a training plan may take of the device-local heap (VulkanBackend::memory_budget). With
//   VK_EXT_memory_budget: budget - usage at device creation - budget_margin_mib (driver objects, pipelines,
//   staging). Without it: heap_percent_without_budget_ext of the heap size — 50 by default because a phone's or
//   integrated GPU's heap is the OS's RAM, 90 on discrete desktop GPUs (dedicated VRAM). heap_budget_mib > 0
//   replaces the driver's figure (a driver that misreports; tests).
#include "runtime/device_profile.h"

namespace pocketlora::vk {

const nlohmann::json& DeviceProfile::table() {
  static const nlohmann::json t = nlohmann::json::parse(R"json(
[
  {"name": "default", "match": {},
   "params": {
     "matmul.wg_x": 8, "matmul.wg_y": 8, "matmul.tm": 4, "matmul.tn": 4,
     "matmul.gemv_wg": 64, "matmul.gemv_subgroup": 1, "matmul.gemv_max_m": 4, "matmul.gemv_lora": 1,

     "elementwise.wg": 64, "reduce.wg": 64, "prefer_fp16": 0, "loop_limit": 0, "submit_timeout_s": 600,

     "nn.wg": 64,

     "attention.wg": 64, "attention.wg_x": 8, "attention.wg_y": 8, "attention.tm": 4, "attention.tn": 4, "attention.bk": 8, "attention.lean_rows": 2, "attention.simple_max_t": 512, "attention.simple_min_head_dim": 32, "attention.simple_max_scratch": 16777216, "attention.loop_limit": 0,

     "lora.wg": 64,

     "optim.wg": 64,

     "nf4.wg": 64, "nf4.wg_x": 8, "nf4.wg_y": 8, "nf4.tm": 4, "nf4.tn": 4, "nf4.dx_tm": 4,
     "nf4.gemv_wg": 64, "nf4.gemv_subgroup": 1, "nf4.gemv_max_m": 4, "nf4.select_decode": 0,
     "nf4.shared_tiles": 0, "nf4.shared_bk": 32,

     "memory.budget_margin_mib": 128, "memory.heap_percent_without_budget_ext": 50, "memory.heap_budget_mib": 0
   },
   "quirks": []},
  {"name": "nvidia", "match": {"vendor_id": 4318},
   "params": {"matmul.wg_x": 16, "matmul.wg_y": 16, "matmul.tm": 4, "matmul.tn": 4,
              "elementwise.wg": 256, "reduce.wg": 256, "nf4.shared_tiles": 1,
              "memory.heap_percent_without_budget_ext": 90}},
  {"name": "amd", "match": {"vendor_id": 4098},
   "params": {"matmul.wg_x": 16, "matmul.wg_y": 16, "matmul.tm": 4, "matmul.tn": 4,
              "elementwise.wg": 256, "reduce.wg": 256, "nf4.shared_tiles": 1,
              "memory.heap_percent_without_budget_ext": 90}},
  {"name": "intel", "match": {"vendor_id": 32902},
   "params": {"matmul.wg_x": 8, "matmul.wg_y": 8, "matmul.tm": 4, "matmul.tn": 4,
              "elementwise.wg": 128, "reduce.wg": 128}},
  {"name": "qualcomm-adreno", "match": {"vendor_id": 20803},
   "params": {"matmul.wg_x": 16, "matmul.wg_y": 8, "matmul.tm": 4, "matmul.tn": 4,
              "elementwise.wg": 128, "reduce.wg": 128, "prefer_fp16": 1},
   "quirks": ["avoid_int8_storage_writes"]},
  {"name": "arm-mali", "match": {"vendor_id": 5045},
   "params": {"matmul.wg_x": 8, "matmul.wg_y": 8, "matmul.tm": 4, "matmul.tn": 4,
              "elementwise.wg": 64, "reduce.wg": 64, "prefer_fp16": 1},
   "quirks": ["shared_memory_not_faster"]},
  {"name": "samsung-xclipse", "match": {"vendor_id": 5197},
   "params": {"matmul.wg_x": 16, "matmul.wg_y": 8, "matmul.tm": 4, "matmul.tn": 4,
              "elementwise.wg": 128, "reduce.wg": 128, "prefer_fp16": 1, "nf4.shared_tiles": 1}},
  {"name": "mesa-lavapipe", "match": {"vendor_id": 65541, "device_type": "cpu"},
   "params": {"matmul.wg_x": 8, "matmul.wg_y": 8, "matmul.tm": 16, "matmul.tn": 8,
              "elementwise.wg": 64, "reduce.wg": 64,
              "attention.loop_limit": 65000,
              "nf4.wg_x": 8, "nf4.wg_y": 4, "nf4.tm": 16, "nf4.tn": 8, "nf4.dx_tm": 32, "nf4.select_decode": 1, "loop_limit": 65000,
              "submit_timeout_s": 7200},
   "quirks": ["shared_memory_slow", "dispatch_overhead_high", "dynamic_array_index_is_gather"]}
]
)json");
  return t;
}

}  // namespace pocketlora::vk
