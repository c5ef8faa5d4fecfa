#pragma once
// A whole (small) file as a string: JSON sidecars, pointers, logs. IoError naming the path when it cannot be read.
#include <filesystem>
#include <string>

namespace pocketlora {

std::string read_file_text(const std::filesystem::path& path);

}  // namespace pocketlora
