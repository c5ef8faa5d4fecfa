#pragma once
// Opens the Vulkan loader at run time (dlopen) and fills the command pointers of runtime/vulkan_api.h.
#include <string>
#include <vector>

#include "runtime/vulkan_api.h"

namespace pocketlora::vk {

// The loader file names tried, in order: $POCKETLORA_VULKAN_LOADER alone when set (a loader outside the linker's
// search path, or a test's missing one), else "libvulkan.so.1" (the versioned name glibc systems install) and
// "libvulkan.so" (Android's name).
std::vector<std::string> vulkan_loader_candidates();

// Opens the first loader that exists and resolves the global commands (vkCreateInstance, ...). Idempotent and
// thread-safe; after a failure the next call tries again. No loader, or one without vkGetInstanceProcAddr, is a
// NoDevice error naming every file tried and what to install.
void load_vulkan();

// Resolves every instance- and device-level command through `instance`. Only the first instance's lookup is kept:
// for core commands the loader hands out its dispatching trampolines (the functions libvulkan exports, which is
// what a link-time call reached), valid for every instance and device of the process, and keeping them fixed means
// no thread ever sees a pointer change under it. A missing command is a NoDevice error naming it.
void load_instance_commands(VkInstance instance);

}  // namespace pocketlora::vk
