#include "host/util/read_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "host/core/error.h"

namespace pocketlora {

std::string read_file_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read '" + path.string() + "': " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw IoError("cannot read '" + path.string() + "': read error");
  return s.str();
}

}  // namespace pocketlora
