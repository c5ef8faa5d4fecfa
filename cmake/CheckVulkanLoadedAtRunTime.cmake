# Vulkan is opened at run time (runtime/vulkan_loader.cpp), never linked: Android forbids a link-time libvulkan
# dependency and a machine without a loader must still run the CPU backend. Run by ctest as the test
# "vulkan_loaded_at_run_time" (cmake -DREADELF=<readelf> -DFILES=<bin;bin> -P ...): fails when a binary lists
# libvulkan as NEEDED or imports any vk* symbol (a call that bypassed the loaded pointers).
if(NOT READELF OR NOT FILES)
  message(FATAL_ERROR "CheckVulkanLoadedAtRunTime: pass -DREADELF=<readelf> -DFILES=<binary;...>")
endif()
set(problems "")
foreach(f ${FILES})
  execute_process(COMMAND ${READELF} -W --dynamic --dyn-syms ${f} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(APPEND problems "  ${f}: readelf failed (${rc})\n")
    continue()
  endif()
  string(REGEX MATCHALL "NEEDED[^\n]*libvulkan[^\n]*" needed "${out}")
  string(REGEX MATCHALL "UND[ \t]+vk[A-Z][A-Za-z0-9_]*" imports "${out}")
  foreach(m ${needed} ${imports})
    string(APPEND problems "  ${f}: ${m}\n")
  endforeach()
endforeach()
if(problems)
  message(FATAL_ERROR "linked against libvulkan instead of loading it at run time:\n${problems}")
endif()
message(STATUS "no libvulkan NEEDED and no vk* imports in: ${FILES}")
