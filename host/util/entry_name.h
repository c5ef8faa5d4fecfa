#pragma once
// Names of entries that become one file or directory of a store (an adapter in the adapter store, a dataset the
// app uploaded): safe as a single path component whatever the caller sends.
#include <cstddef>
#include <string>

namespace pocketlora {

inline constexpr std::size_t kMaxEntryNameLength = 64;

// 1..64 characters of [A-Za-z0-9._-] starting with a letter or digit, not a temporary's name ("x.tmp.123"):
// no path separators, no "..", nothing hidden. InvalidArgument "KIND name 'NAME': RULE" otherwise.
void validate_entry_name(const std::string& kind, const std::string& name);

}  // namespace pocketlora
