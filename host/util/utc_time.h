#pragma once
// Wall-clock timestamps for records people read (adapter manifests, job queue entries): UTC, ISO 8601, seconds.
#include <string>

namespace pocketlora {

std::string utc_now_iso8601();  // "2026-12-02T14:01:39Z"

}  // namespace pocketlora
