// Embedding lookup / backward over a row-chunked table as op cases (tests/harness/op_case.h): GPU vs reference
// (repeated ids accumulate), the reference backward against finite differences. The reference's id check:
// tests/ref/test_embedding_ref.cpp.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "harness/op_case.h"
#include "host/ref/embedding.h"

#if POCKETLORA_HAS_VULKAN
#include "host/ops/embedding.h"
#include "runtime/command.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// out = table[ids], dtable = dtable0 + scatter(dout). The GPU table and dtable are split by rows into chunks of at
// most `chunk_bytes` (0: the device's binding limit, one chunk for these tables); each dtable chunk is an output.
// The table may be f16 (read into f32 rows; dtable stays f32). Gradient check (f32): L = sum(out .* dout).
class EmbeddingCase : public OpCase {
 public:
  EmbeddingCase(std::int64_t V, std::int64_t D, std::vector<std::int32_t> ids, std::uint64_t chunk_bytes,
                std::uint64_t table_seed, std::uint64_t dout_seed, DType table_dtype = DType::F32)
      : V_(V), D_(D), ids_(std::move(ids)), chunk_bytes_(chunk_bytes), table_seed_(table_seed), dout_seed_(dout_seed),
        table_dtype_(table_dtype) {
    name = "embedding/V" + std::to_string(V) + "_D" + std::to_string(D) + "_n" + std::to_string(ids_.size()) +
           (chunk_bytes ? "/chunk" + std::to_string(chunk_bytes) + "B" : "/one_chunk") +
           (table_dtype == DType::F16 ? "_f16_table" : "");
  }
  // ids, table, dout, dtable0.
  std::vector<Tensor> inputs() const override {
    return {int_tensor(ids_), random_tensor({V_, D_}, table_seed_, -1, 1, table_dtype_),
            random_tensor({n(), D_}, dout_seed_), random_tensor({V_, D_}, 3)};
  }
  std::vector<std::string> output_names() const override {
    std::vector<std::string> names{"out"};
    for (std::int64_t r = 0; r < V_; r += rows_per_chunk())
      names.push_back(fmt::format("dtable rows {}..{}", r, std::min(V_, r + rows_per_chunk()) - 1));
    return names;
  }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    Tensor out = Tensor::zeros({n(), D_}), dtable = in[3].clone();
    ref::embedding(in[0], in[1], out);
    ref::embedding_backward(in[0], in[2], dtable);
    std::vector<Tensor> r{out};
    for (std::int64_t row = 0; row < V_; row += rows_per_chunk())
      r.push_back(dtable.slice_rows(row, std::min(V_, row + rows_per_chunk())).clone());
    return r;
  }
  Tolerance tolerance(std::size_t i) const override {
    Tolerance t;
    // out is a copy (an f16 table's values are exact in f32): exact. dtable: an id that appears k times is k f32
    // adds in token order on both sides.
    t.max_abs = i == 0 ? 0.0 : 1e-6;
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto table = ops::upload_row_chunked(run.dev, run.arena, in[1], "table", chunk_bytes_);
    auto dtable = ops::upload_row_chunked(run.dev, run.arena, in[3], "dtable", chunk_bytes_);
    if (std::min(dtable.rows_per_chunk, V_) != rows_per_chunk())
      throw std::logic_error(fmt::format("{}: {} rows per chunk, the case expects {}", name, dtable.rows_per_chunk,
                                         rows_per_chunk()));
    auto ids = run.up(in[0], "ids"), dout = run.up(in[2], "dout"), out = run.zeros({n(), D_}, DType::F32);
    ops::embedding(run.seq, ids, table, out);
    ops::embedding_backward(run.seq, ids, dout, dtable);
    std::vector<ops::DeviceTensor> r{out};
    r.insert(r.end(), dtable.chunks.begin(), dtable.chunks.end());
    return r;
  }
#endif
  // Linear in the table: central differences are exact up to f64 rounding (~1e-16 |L| / h).
  bool has_gradcheck() const override { return chunk_bytes_ == 0 && table_dtype_ == DType::F32; }
  double loss(const std::vector<Tensor>& in) const override {
    Tensor out = Tensor::zeros({n(), D_}, DType::F64);
    ref::embedding(in[0], in[1], out);
    return dot(out, in[2]);
  }
  std::vector<Tensor> gradient(const std::vector<Tensor>& in) const override {
    Tensor dtable = Tensor::zeros({V_, D_}, DType::F64);
    ref::embedding_backward(in[0], in[2], dtable);
    return {Tensor(), dtable, Tensor(), Tensor()};  // ids, dout (the loss weight) and dtable0 are not differentiated
  }
  GradTolerance grad_tolerance() const override { return {1e-8}; }
  // Forward: a row copy per id; backward: one add per id and column (a read-modify-write of the dtable row).
  double flops() const override { return static_cast<double>(n() * D_); }
  double bytes() const override { return 4.0 * static_cast<double>(2 * n() + 5 * n() * D_); }

 private:
  std::int64_t n() const { return static_cast<std::int64_t>(ids_.size()); }
  std::int64_t rows_per_chunk() const {
    return chunk_bytes_ ? static_cast<std::int64_t>(chunk_bytes_) / (D_ * 4) : V_;
  }

  std::int64_t V_, D_;
  std::vector<std::int32_t> ids_;
  std::uint64_t chunk_bytes_, table_seed_, dout_seed_;
  DType table_dtype_;
};

std::vector<OpCasePtr> embedding_cases() {
  std::vector<OpCasePtr> v;
  // 1000-byte chunks: 12 rows each, so the ids (first and last row, id 5 three times) land in 4 different bindings.
  const std::vector<std::int32_t> ids{0, 36, 5, 5, 12, 24, 5, 11, 13};
  for (std::uint64_t chunk : {1000ull, 0ull}) v.push_back(std::make_shared<EmbeddingCase>(37, 20, ids, chunk, 1, 2));
  // An f16 table (the trainer's frozen table of a large vocabulary) in 25-row f16 chunks; dtable f32 as above.
  for (std::uint64_t chunk : {1000ull, 0ull})
    v.push_back(std::make_shared<EmbeddingCase>(37, 20, ids, chunk, 1, 2, DType::F16));
  // The gradient check's data: a 3-row table, id 2 twice, id 1 never.
  v.push_back(std::make_shared<EmbeddingCase>(3, 4, std::vector<std::int32_t>{2, 0, 2}, 0, 6, 5));
  return v;
}

POCKETLORA_OP_CASES(Embedding, embedding_cases)

}  // namespace
