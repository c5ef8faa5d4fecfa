#pragma once
// What a `pocketlora train --out` directory says about the adapter in it, for the adapter store's manifest: the
// base model fingerprint and quantization its newest checkpoint records, and the final training metrics
// (steps, last loss, last validation loss) from metrics.jsonl up to that checkpoint's step (a run killed after
// its last save logged steps the saved adapter never saw). A directory with neither (a plain PEFT adapter) gives
// an origin with every field unknown; a checkpoint or log that exists but cannot be read is an error naming it.
#include <filesystem>

#include "host/adapters/adapter_store.h"

namespace pocketlora {

AdapterOrigin read_adapter_origin(const std::filesystem::path& run_dir);

}  // namespace pocketlora
