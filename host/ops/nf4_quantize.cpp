#include "host/ops/nf4_quantize.h"

#include <algorithm>

#include "host/core/error.h"
#include "runtime/error.h"
#include "shaders/common/nf4_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

void nf4_quantize(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& codes, const DeviceTensor& absmax,
                  const DeviceTensor& status) {
  const std::int64_t n = x.numel();
  const std::int64_t blocks = (n + 63) / 64;
  if (x.dtype != DType::F32 && x.dtype != DType::F16)
    throw ShapeError("ops::nf4_quantize: input " + describe("x", x) + " must be f32 or f16");
  if (n == 0 || n > 0xffffffffll)
    throw ShapeError("ops::nf4_quantize: input " + describe("x", x) + " must have 1..2^32-1 elements");
  if (codes.buf.size < static_cast<std::uint64_t>((n + 7) / 8 * 4) || absmax.numel() != blocks ||
      absmax.dtype != DType::F32 || status.buf.size < 8)
    throw ShapeError("ops::nf4_quantize: outputs " + describe("codes", codes) + " (" +
                     std::to_string(codes.buf.size) + " bytes), " + describe("absmax", absmax) +
                     " do not fit input " + describe("x", x) + " (need " + std::to_string((n + 7) / 8 * 4) +
                     " code bytes and " + std::to_string(blocks) + " f32 absmax)");
  vk::Device& dev = seq.device();
  if (x.dtype == DType::F16 && !dev.caps().storage_16bit)
    throw DeviceLimitError("ops::nf4_quantize: f16 input needs 16-bit storage, which '" + dev.caps().name + "' lacks");
  const std::uint32_t wg = dev.profile().u32("nf4.wg");
  shader::Nf4MatmulPush push{1, 1, static_cast<std::uint32_t>(n), 0, 0.0f, 1.0f, 0, 256};
  const auto& pipe = dev.pipeline({x.dtype == DType::F16 ? shaders::nf4_quantize_f16 : shaders::nf4_quantize_f32, {wg}, 4,
                                   sizeof(push)});
  const std::uint64_t groups = (static_cast<std::uint64_t>(blocks) + wg - 1) / wg;
  const auto gx = static_cast<std::uint32_t>(std::min<std::uint64_t>(groups, 65535));
  const auto gy = static_cast<std::uint32_t>((groups + gx - 1) / gx);
  seq.dispatch(pipe, {vk::reads(x.buf), vk::writes(codes.buf), vk::writes(absmax.buf), vk::writes(status.buf)}, push,
               {gx, gy, 1}, "nf4_quantize");
}

Nf4FirstLevel quantize_nf4_blocking(vk::Device& dev, vk::Arena& scratch, const DeviceTensor& x,
                                    const std::string& name) {
  const std::int64_t n = x.numel(), blocks = (n + 63) / 64;
  DeviceTensor codes;
  codes.dtype = DType::U8;
  codes.shape = {(n + 1) / 2};
  codes.buf = scratch.allocate(static_cast<std::uint64_t>((n + 7) / 8 * 4), name + ".codes");
  DeviceTensor absmax = allocate(scratch, {blocks}, DType::F32, name + ".absmax");
  DeviceTensor status = allocate(scratch, {2}, DType::I32, name + ".status");
  const std::uint32_t init[2] = {0u, 0xffffffffu};
  dev.upload(status.buf, init, sizeof init);
  vk::Sequence seq(dev);
  nf4_quantize(seq, x, codes, absmax, status);
  seq.submit();
  std::uint32_t st[2];
  dev.download(status.buf, st, sizeof st);
  if (st[0] != 0)
    throw NumericError("NF4 quantization of '" + name + "' " + shape_str(x.shape) + ": element " +
                       std::to_string(st[1]) + " is NaN or Inf; the checkpoint tensor is corrupt");
  Nf4FirstLevel out;
  out.codes.resize(static_cast<std::size_t>((n + 7) / 8 * 4));
  dev.download(codes.buf, out.codes.data(), out.codes.size());
  out.codes.resize(static_cast<std::size_t>((n + 1) / 2));
  out.absmax.resize(static_cast<std::size_t>(blocks));
  dev.download(absmax.buf, out.absmax.data(), out.absmax.size() * 4);
  return out;
}

}  // namespace pocketlora::ops
