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
//   matmul.gemv_lora_cols 64: the fused LoRA GEMV recomputes T = x A^T in every workgroup, and on llvmpipe a
//   workgroup's loads are per-lane scalar loops, so T cost as much as the 8 columns of a 64-invocation workgroup;
//   64 columns per workgroup (each subgroup loops over 8) cut the adapter's JIT instructions per stories260K token
//   from +27.9 M to +6.0 M over the base GEMVs (callgrind; docs/INFERENCE.md).
//   matmul.gemv_lora_t_lanes 1: T in registers (one subgroup per workgroup, lane l walks rank rows l, l + 8, ...
//   in vec4 loads): no barrier, so no coroutine, and no shared memory; the fused kernel's JIT instructions for a
//   stories260K bench run fell from 810 M to 626 M (callgrind, 3 Dec 2026; docs/INFERENCE.md).
//   matmul.gemv_cols stays 0 here: the same one-subgroup layout cut the plain GEMV's instructions 17 %, but it
//   leaves one workgroup where there were eight, and wall-clock runs on this 2-core VM could not tell it apart.
// - attention (lavapipe, op bench): at head_dim 8-12 the lean variant beats the simple one (T^2 scratch) 1.5-2.5x
//   (traffic on the scratch ~T^2, compute ~T^2 * head_dim), at head_dim 64 the simple one wins; lean_rows 2
//   ~ 1 > 4 at head_dim 8 (T=256 fwd 2.47 / 2.48 / 3.59 ms). lavapipe's attention.loop_limit: gallivm caps the
//   loop-condition checks of one shader invocation, all loops together, at 65535 and silently leaves every loop
//   after that (lean dK/dV came out partial at T=130 with 8 query heads per kv head); variants that would exceed
//   it are not used.
// - Mobile GPUs: one vendor entry (any generation, conservative) plus entries by device name for the generations
//   whose compute model is publicly documented. None of these values was measured on the hardware (no phone was
//   lent to the sessions that wrote them): they follow the sources cited per entry; confirm with
//   `pocketlora bench ...` and a POCKETLORA_PROFILE override before trusting them. The rule they encode: every 1-D
//   workgroup is a whole number of subgroups, so the subgroup GEMV (nf4.gemv_subgroup, which needs
//   nf4.gemv_wg % subgroupSize == 0) is not silently skipped, and shared-memory tiling only where local memory is
//   real on-chip memory.
// - Adreno (Qualcomm, vendor 0x5143; device names "Adreno (TM) 6xx/7xx/8xx"):
//   * 6xx/7xx/8xx: waves of 64 fibers, doubled to 128 where the chip supports it, and Vulkan's subgroupSize is the
//     doubled 128 — Mesa src/freedreno/ir3/ir3_compiler.c (threadsize_base = 64 for gen >= 6) and
//     src/freedreno/vulkan/tu_device.cc (subgroupSize = threadsize_base * 2 when supports_double_threadsize).
//     Waves launch in pairs (wave_granularity = 2) and compute shared memory is 32 KiB — Mesa
//     src/freedreno/common/freedreno_devices.py (a6xx gen1-4, a7xx 725-750; the a8xx entries inherit a7xx_gen3).
//     Hence workgroups of 128 (one doubled wave or a pair of single ones) and subgroup GEMV at 128, and no
//     shared-memory tiles (32 KiB, not measured to pay).
//   * 605/608/610/612 (a6xx_gen1_low in freedreno_devices.py): no double threadsize (subgroup 64),
//     wave_granularity 1, 16 KiB shared memory: workgroups of 64.
//   * unknown generation (a5xx: threadsize_base 32): the vendor entry, 128-invocation 2-D tiles as before.
//   llama.cpp's Vulkan backend (ggml/src/ggml-vulkan/ggml-vulkan.cpp) keeps Qualcomm off its large matmul tiles —
//   another reason to stay at 4x4 register tiles here.
// - Mali (Arm, vendor 0x13B5): "Mali GPUs use caches instead of local memories ... no performance advantage using
//   local memory", workgroups "between 4 and 64 inclusive, and a multiple of 4", and Valhall (Mali-G77) runs 16
//   adjacent threads in lock-step — Arm Mali OpenCL Developer Guide 101574 §7.3.2, §9.2, §9.6
//   (developer.arm.com/documentation/101574). Vulkan subgroupSize 16 for Valhall and later (arch >= 9), 8/4 for
//   Bifrost, 1 for Midgard — Mesa src/panfrost/compiler/pan_compiler.h pan_subgroup_size(). Hence register-blocked
//   4x4 kernels, no shared-memory tiles, workgroups of 64 everywhere; the subgroup GEMV only on 16-wide Valhall and
//   5th Gen (G720/G620, G725/G625, Immortalis-G925 — Arm's 5th Gen GPU architecture), off for unknown generations.
//   Valhall and 5th Gen get separate entries though nothing public separates their compute tuning yet: a measured
//   value lands in one place.
// - Xclipse (Samsung, vendor 0x144D; "Samsung Xclipse 920/940/950"): AMD RDNA-based; RDNA runs wave32 natively and
//   wave64 as two halves, and has 64 KiB of LDS per workgroup (128 KiB per WGP) — AMD "RDNA Architecture"
//   whitepaper and GPUOpen's RDNA performance guide (gpuopen.com/performance). Hence workgroups that are whole
//   wave64s (128 for element-wise, 64 for the subgroup GEMV: a multiple of 32 and 64, so either wave mode works) and
//   shared-memory NF4 tiles, as on AMD desktop.
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
     "matmul.gemv_cols": 0, "matmul.gemv_lora_cols": 0, "matmul.gemv_lora_t_lanes": 0,

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
  {"name": "adreno-6xx", "match": {"vendor_id": 20803, "name_contains": "Adreno (TM) 6"},
   "params": {"matmul.wg_x": 16, "matmul.wg_y": 8, "nf4.wg_x": 16, "nf4.wg_y": 8,
              "elementwise.wg": 128, "reduce.wg": 128, "nn.wg": 128, "lora.wg": 128, "optim.wg": 128,
              "nf4.wg": 128, "nf4.gemv_wg": 128, "nf4.shared_tiles": 0}},
  {"name": "adreno-6xx-low", "match": {"vendor_id": 20803,
                                       "name_contains": ["Adreno (TM) 605", "Adreno (TM) 608", "Adreno (TM) 610",
                                                         "Adreno (TM) 612"]},
   "params": {"matmul.wg_x": 8, "matmul.wg_y": 8, "nf4.wg_x": 8, "nf4.wg_y": 8,
              "elementwise.wg": 64, "reduce.wg": 64, "nn.wg": 64, "lora.wg": 64, "optim.wg": 64,
              "nf4.wg": 64, "nf4.gemv_wg": 64, "nf4.shared_tiles": 0}},
  {"name": "adreno-7xx", "match": {"vendor_id": 20803, "name_contains": "Adreno (TM) 7"},
   "params": {"matmul.wg_x": 16, "matmul.wg_y": 8, "nf4.wg_x": 16, "nf4.wg_y": 8,
              "elementwise.wg": 128, "reduce.wg": 128, "nn.wg": 128, "lora.wg": 128, "optim.wg": 128,
              "nf4.wg": 128, "nf4.gemv_wg": 128, "nf4.shared_tiles": 0}},
  {"name": "adreno-8xx", "match": {"vendor_id": 20803, "name_contains": "Adreno (TM) 8"},
   "params": {"matmul.wg_x": 16, "matmul.wg_y": 8, "nf4.wg_x": 16, "nf4.wg_y": 8,
              "elementwise.wg": 128, "reduce.wg": 128, "nn.wg": 128, "lora.wg": 128, "optim.wg": 128,
              "nf4.wg": 128, "nf4.gemv_wg": 128, "nf4.shared_tiles": 0}},
  {"name": "arm-mali", "match": {"vendor_id": 5045},
   "params": {"matmul.wg_x": 8, "matmul.wg_y": 8, "matmul.tm": 4, "matmul.tn": 4,
              "elementwise.wg": 64, "reduce.wg": 64, "prefer_fp16": 1, "nf4.gemv_subgroup": 0},
   "quirks": ["shared_memory_not_faster"]},
  {"name": "mali-valhall", "match": {"vendor_id": 5045,
                                     "name_contains": ["Mali-G57", "Mali-G68", "Mali-G77", "Mali-G78", "Mali-G310",
                                                       "Mali-G510", "Mali-G610", "Mali-G710", "-G615", "-G715"]},
   "params": {"matmul.wg_x": 8, "matmul.wg_y": 8, "matmul.tm": 4, "matmul.tn": 4, "nf4.wg_x": 8, "nf4.wg_y": 8,
              "elementwise.wg": 64, "reduce.wg": 64, "nn.wg": 64, "nf4.wg": 64,
              "nf4.gemv_subgroup": 1, "nf4.gemv_wg": 64, "nf4.shared_tiles": 0}},
  {"name": "mali-5th-gen", "match": {"vendor_id": 5045,
                                     "name_contains": ["-G720", "-G620", "-G725", "-G625", "-G925"]},
   "params": {"matmul.wg_x": 8, "matmul.wg_y": 8, "matmul.tm": 4, "matmul.tn": 4, "nf4.wg_x": 8, "nf4.wg_y": 8,
              "elementwise.wg": 64, "reduce.wg": 64, "nn.wg": 64, "nf4.wg": 64,
              "nf4.gemv_subgroup": 1, "nf4.gemv_wg": 64, "nf4.shared_tiles": 0}},
  {"name": "samsung", "match": {"vendor_id": 5197},
   "params": {"prefer_fp16": 1}},
  {"name": "xclipse-9xx", "match": {"vendor_id": 5197, "name_contains": "Xclipse 9"},
   "params": {"matmul.wg_x": 16, "matmul.wg_y": 8, "matmul.tm": 4, "matmul.tn": 4,
              "elementwise.wg": 128, "reduce.wg": 128, "nf4.gemv_wg": 64, "nf4.shared_tiles": 1}},
  {"name": "mesa-lavapipe", "match": {"vendor_id": 65541, "device_type": "cpu"},
   "params": {"matmul.wg_x": 8, "matmul.wg_y": 8, "matmul.tm": 16, "matmul.tn": 8,
              "elementwise.wg": 64, "reduce.wg": 64,
              "attention.loop_limit": 65000, "matmul.gemv_lora_cols": 64, "matmul.gemv_lora_t_lanes": 1,
              "nf4.wg_x": 8, "nf4.wg_y": 4, "nf4.tm": 16, "nf4.tn": 8, "nf4.dx_tm": 32, "nf4.select_decode": 1, "loop_limit": 65000,
              "submit_timeout_s": 7200},
   "quirks": ["shared_memory_slow", "dispatch_overhead_high", "dynamic_array_index_is_gather"]}
]
)json");
  return t;
}

}  // namespace pocketlora::vk
