#include "host/util/entry_name.h"

#include <cctype>

#include "host/core/error.h"
#include "host/util/atomic_file.h"

namespace pocketlora {

void validate_entry_name(const std::string& kind, const std::string& name) {
  auto refuse = [&](const std::string& why) { throw InvalidArgument(kind + " name '" + name + "': " + why); };
  if (name.empty()) refuse("must not be empty");
  if (name.size() > kMaxEntryNameLength)
    refuse(std::to_string(name.size()) + " characters, at most " + std::to_string(kMaxEntryNameLength) + " allowed");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      refuse(std::string("character '") + c + "' not allowed (letters, digits, '.', '_', '-' only; no path separators)");
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) refuse("must start with a letter or a digit");
  if (name.find("..") != std::string::npos) refuse("must not contain \"..\"");
  if (is_atomic_temp_name(name)) refuse("ends like a temporary directory (\".tmp.<digits>\")");
}

}  // namespace pocketlora
