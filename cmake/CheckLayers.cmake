# The dependency rules of docs/ARCHITECTURE.md §2, checked on every #include line of the folders below. Run by
# ctest as the test "layering" (cmake -DROOT=<repo> -P cmake/CheckLayers.cmake): a folder that includes what it
# must not fails the suite, naming the file and the line.
if(NOT ROOT)
  message(FATAL_ERROR "CheckLayers: pass -DROOT=<repository root>")
endif()

# Each rule: folder :: forbidden include (regex on the path inside <> or "") :: allowed exception (regex, or -)
#            :: files of the folder the rule skips (regex, or -)
set(rules
  # The Vulkan core knows nothing of LLMs: of host/ it sees only the one error hierarchy.
  "runtime :: ^host/ :: ^host/util/error\\.h$ :: -"
  # Utilities (errors, checked sizes, mmap, atomic files) depend on nothing else of the project, nor on Eigen/Vulkan.
  "host/util :: ^(host/|runtime/|shaders/|Eigen|vulkan) :: ^host/util/ :: -"
  # Loaders, tokenizers and data never touch the Vulkan runtime or GPU ops, nor Eigen directly.
  "host/model :: ^(runtime/|host/ops/|Eigen|vulkan) :: - :: -"
  "host/data :: ^(runtime/|host/ops/|host/model/llama|Eigen|vulkan) :: - :: -"
  # The host types the loaders share with the CPU backend stay free of Eigen (its views live in eigen_view.h).
  "host/ref/tensor.h :: ^(Eigen|host/ref/eigen_view) :: - :: -"
  "host/ref/nf4_quantize.h :: ^(Eigen|host/ref/eigen_view) :: - :: -"
  "host/ref/rope.h :: ^(Eigen|host/ref/eigen_view) :: - :: -"
  "host/model :: ^host/ref/ :: ^host/ref/(tensor|nf4_quantize|rope)\\.h$ :: -"
  "host/data :: ^host/ref/ :: ^host/ref/(tensor|nf4_quantize|rope)\\.h$ :: -"
  # The CPU backend builds without Vulkan.
  "host/ref :: ^(runtime/|host/ops/|vulkan) :: - :: -"
  # The op interface is backend-neutral; only the factory knows both implementations.
  "host/backend :: ^(runtime/|host/ops/|vulkan) :: - :: make_backend\\.cpp$"
)

set(violations "")
foreach(rule ${rules})
  string(REPLACE " :: " ";" parts "${rule}")
  list(GET parts 0 folder)
  list(GET parts 1 forbidden)
  list(GET parts 2 allowed)
  list(GET parts 3 skipped)
  if(folder MATCHES "\\.(h|cpp)$")
    set(files "${ROOT}/${folder}")  # a rule for one file
  else()
    file(GLOB_RECURSE files "${ROOT}/${folder}/*.h" "${ROOT}/${folder}/*.cpp")
  endif()
  if(NOT files)
    string(APPEND violations "  rule for '${folder}' matches no files (folder moved? update cmake/CheckLayers.cmake)\n")
  endif()
  foreach(f ${files})
    if(NOT skipped STREQUAL "-" AND f MATCHES "${skipped}")
      continue()
    endif()
    file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
    foreach(line ${lines})
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"]*)[>\"].*$" "\\1" inc "${line}")
      if(inc MATCHES "${forbidden}")
        if(allowed STREQUAL "-" OR NOT inc MATCHES "${allowed}")
          file(RELATIVE_PATH rel "${ROOT}" "${f}")
          string(APPEND violations "  ${rel}: ${line}   (${folder}/ must not include ${forbidden})\n")
        endif()
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations)
  message(FATAL_ERROR "Layering rules broken (docs/ARCHITECTURE.md §2):\n${violations}")
endif()
message(STATUS "CheckLayers: every include respects docs/ARCHITECTURE.md §2")
