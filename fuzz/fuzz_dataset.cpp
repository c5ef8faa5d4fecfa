// Alpaca JSON / JSONL and chat JSONL bytes as `pocketlora data stats` reads them: records, each tokenized with
// every chat template (llama2.c's tok512 tokenizer from the shared data), then truncated and packed.
#include <cstdlib>

#include "fuzz/fuzz_guard.h"
#include "fuzz/fuzz_scratch_dir.h"
#include "host/data/batching.h"
#include "host/data/dataset.h"
#include "host/tokenizer/tokenizer.h"

namespace {

const pocketlora::Tokenizer& tokenizer() {
  static const auto tok = [] {
    const char* env = std::getenv("POCKETLORA_DATA");
    const std::filesystem::path data = env ? env : POCKETLORA_DEFAULT_DATA_DIR;
    return pocketlora::load_tokenizer(data / "models/stories260K/tok512.bin");
  }();
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pocketlora;
  const auto& tok = tokenizer();
  const auto path = fuzz::scratch().write("data.json", data, size);
  return fuzz::run_guarded([&] {
    for (const auto format : {DataFormat::Auto, DataFormat::Alpaca, DataFormat::Chat}) {
      std::vector<Record> records;
      try {
        records = read_records(path, format);
      } catch (const Error&) {
        continue;  // this format does not fit; the next may
      }
      for (const auto tmpl : {ChatTemplate::Llama2, ChatTemplate::Llama3, ChatTemplate::ChatML}) {
        std::vector<Example> ex;
        try {
          for (auto& r : records) ex.push_back(tokenize_record(tok, r, tmpl));
        } catch (const Error&) {
          continue;  // e.g. the template's special tokens are not in this vocabulary
        }
        (void)truncate_examples(ex, 32);
        (void)pack_examples(ex, 32, tok.eos_id().value_or(0));
      }
    }
  });
}
