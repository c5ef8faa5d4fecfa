# The dependency rules of docs/ARCHITECTURE.md §2, checked on every #include line of the folders below. Run by
# ctest as the test "layering" (cmake -DROOT=<repo> -P cmake/CheckLayers.cmake): a folder that includes what it
# must not fails the suite, naming the file and the line.
if(NOT ROOT)
  message(FATAL_ERROR "CheckLayers: pass -DROOT=<repository root>")
endif()

# Each rule: folder :: forbidden include (regex on the path inside <> or "") :: allowed exception (regex, or -)
#            :: files of the folder the rule skips (regex, or -)
set(rules
  # Core (tensors, dtypes, errors, the NF4 host type, op contracts) knows nothing of Eigen, Vulkan, JSON, files
  # or LLMs: of the project it sees only itself and the constant tables shared with the shaders.
  "host/core :: ^(host/|runtime/|Eigen|vulkan|nlohmann) :: ^host/core/ :: -"
  # The Vulkan core knows nothing of LLMs: of host/ it sees only the one error hierarchy.
  "runtime :: ^host/ :: ^host/core/error\\.h$ :: -"
  # Vulkan is loaded at run time (no libvulkan at link time, as Android requires): the Khronos headers are included
  # by runtime/vulkan_api.h alone, which declares the loaded command pointers every vk* call goes through.
  "runtime :: ^vulkan/ :: - :: vulkan_api\\.h$"
  "host/ops :: ^vulkan/ :: - :: -"
  "tests :: ^vulkan/ :: - :: -"
  "tools :: ^vulkan/ :: - :: -"
  "bench :: ^vulkan/ :: - :: -"
  # Utilities (mmap, atomic files, JSON fields) sit on the error hierarchy only.
  "host/util :: ^(host/|runtime/|shaders/|Eigen|vulkan) :: ^host/(util/|core/error\\.h$) :: -"
  # File formats are containers: they know no model, tokenizer, backend or Eigen.
  "host/formats :: ^(host/|runtime/|Eigen|vulkan) :: ^host/(core|util|formats)/ :: -"
  # Tokenizers read vocabularies from files (GGUF metadata included) and know no model or backend.
  "host/tokenizer :: ^(host/|runtime/|Eigen|vulkan) :: ^host/(core|util|formats|tokenizer)/ :: -"
  # The model (config, one Llama type, the forward written once) is backend-neutral: it sees the op interface,
  # never an implementation of it.
  "host/model :: ^(runtime/|host/(ops|ref|data)/|Eigen|vulkan) :: - :: -"
  # Data (datasets, batching) needs tokenizers, not the model or a backend.
  "host/data :: ^(host/|runtime/|Eigen|vulkan) :: ^host/(core|util|tokenizer|data)/ :: -"
  # The CPU backend builds without Vulkan.
  "host/ref :: ^(runtime/|host/(ops|model|data|tokenizer|formats)/|vulkan) :: - :: -"
  # The Vulkan backend shares contracts through host/core/op, not the CPU backend's code; no loaders either.
  "host/ops :: ^host/(ref|model|data|tokenizer|formats)/|^Eigen :: - :: -"
  # The op interface is backend-neutral; only the factory knows both implementations.
  "host/backend :: ^(runtime/|host/(ops|ref|model|data|tokenizer|formats)/|Eigen|vulkan) :: - :: make_backend\\.cpp$"
  # The trainer (LoRA, the block forward/backward, schedules, checkpoints, metrics) is written once over the op
  # interface: never an implementation of it. It may call the adapter formats (the PEFT export at the end of a run).
  "host/train :: ^(host/|runtime/|shaders/|Eigen|vulkan) :: ^host/(core|util|formats|tokenizer|data|model|backend|train|adapters|policy)/ :: -"
  # Inference (decoder, KV cache, sampling, generation) is written once over the op interface, above the trainer's
  # adapter types and the adapter formats.
  "host/infer :: ^(host/|runtime/|shaders/|Eigen|vulkan) :: ^host/(core|util|formats|tokenizer|data|model|backend|train|adapters|infer)/ :: -"
  # The device policy (sensors, states, thresholds) is pure logic that also runs on Android: no backend, no model.
  "host/policy :: ^(host/|runtime/|shaders/|Eigen|vulkan) :: ^host/(core/error\\.h$|util/|policy/) :: -"
  # Adapter formats (PEFT, GGUF LoRA) sit on the model and the containers, below the trainer.
  "host/adapters :: ^(host/|runtime/|Eigen|vulkan) :: ^host/(core|util|formats|tokenizer|data|model|backend|adapters)/ :: -"
  # Evaluation (perplexity, validation loss, multiple choice) scores through the trainer's step engine, written over
  # the op interface like the trainer: never an implementation of it.
  # It also sees inference: the store adapters made resident in a decoder (resident_adapters.h) pair the PEFT reading
  # that lives here with host/infer's Decoder.
  "host/eval :: ^(host/|runtime/|shaders/|Eigen|vulkan) :: ^host/(core|util|formats|tokenizer|data|model|backend|train|adapters|infer|eval)/ :: -"
  # The job queue and its runner drive the trainer under the device policy, over the op interface like the trainer:
  # never an implementation of it.
  "host/jobs :: ^(host/|runtime/|shaders/|Eigen|vulkan) :: ^host/(core|util|formats|tokenizer|data|model|backend|train|adapters|policy|jobs)/ :: -"
  # The C API sits on top of host/ (backends only through make_backend): no implementation of the op interface,
  # no Vulkan runtime. Its header is pure C and includes nothing of the project.
  "api :: ^(runtime/|host/(ops|ref)/|shaders/|Eigen|vulkan) :: - :: -"
  "api/pocketlora.h :: ^(host/|runtime/|api/) :: - :: -"
  # The JNI bridge goes through the C API only, as an app's own bridge would.
  "api/jni :: ^(host/|runtime/|api/) :: ^api/pocketlora\\.h$ :: -"
  # The app's server (`pocketlora serve`) is a thin layer over host/ like the other tools, never over the C API,
  # and backends only through make_backend: no implementation of the op interface, no Vulkan runtime.
  "tools/serve :: ^(api/|runtime/|host/(ops|ref)/|shaders/|Eigen|vulkan) :: - :: -"
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
