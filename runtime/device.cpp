#include "runtime/device.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "runtime/error.h"
#include "runtime/shader_registry.h"

namespace pocketlora::vk {

namespace {

int type_rank(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
  }
}

std::string describe(const std::vector<PhysicalDeviceInfo>& devices) {
  std::string s;
  for (auto& d : devices)
    s += "\n  [" + std::to_string(d.index) + "] " + d.caps.name + " (" + device_type_name(d.caps.type) + ")";
  return s;
}

std::optional<int> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0') throw NoDevice(std::string(name) + "='" + v + "' is not a device index");
  return static_cast<int>(x);
}

// Writes the pipeline cache next to its final path and renames it over, so a kill never leaves half a cache.
void write_atomically(const std::filesystem::path& path, const std::vector<char>& data) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  auto tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) return;
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

}  // namespace

std::vector<PhysicalDeviceInfo> list_devices(const Instance& inst) {
  std::vector<PhysicalDeviceInfo> out;
  auto pds = inst.physical_devices();
  for (std::size_t i = 0; i < pds.size(); ++i)
    out.push_back({static_cast<int>(i), query_capabilities(pds[i], inst.api_version())});
  return out;
}

int choose_device(const std::vector<PhysicalDeviceInfo>& devices, std::optional<int> requested) {
  if (devices.empty())
    throw NoDevice("the Vulkan loader found no devices. Install a GPU driver, or Mesa's CPU driver lavapipe: "
                   "apt install mesa-vulkan-drivers");
  if (requested) {
    if (*requested < 0 || *requested >= static_cast<int>(devices.size()))
      throw NoDevice("device index " + std::to_string(*requested) + " does not exist; available devices:" +
                     describe(devices));
    return *requested;
  }
  int best = 0;
  for (auto& d : devices)
    if (type_rank(d.caps.type) < type_rank(devices[best].caps.type)) best = d.index;
  return best;
}

Device::Device(DeviceOptions opts) : opts_(std::move(opts)) {
  instance_ = std::make_unique<Instance>(opts_.validation.value_or(validation_requested()));
  auto devices = list_devices(*instance_);
  index_ = choose_device(devices, opts_.index ? opts_.index : env_int("POCKETLORA_DEVICE"));
  physical_ = instance_->physical_devices()[index_];
  caps_ = devices[index_].caps;
  std::filesystem::path override_file = opts_.profile_override;
  if (override_file.empty())
    if (const char* p = std::getenv("POCKETLORA_PROFILE"); p && *p) override_file = p;
  profile_ = DeviceProfile::select(caps_, override_file);
  vkGetPhysicalDeviceMemoryProperties(physical_, &mem_props_);
  heap_allocated_.assign(mem_props_.memoryHeapCount, 0);
  alignment_ = std::max<VkDeviceSize>(16, caps_.min_storage_buffer_offset_alignment);
  block_size_ = opts_.block_size ? opts_.block_size
                                 : std::min<VkDeviceSize>(64ull << 20, caps_.max_storage_buffer_range);
  create_device();
  if (opts_.pipeline_cache) {
    pipeline_cache_path_ = *opts_.pipeline_cache;
  } else if (const char* p = std::getenv("POCKETLORA_PIPELINE_CACHE"); p && *p) {
    pipeline_cache_path_ = p;
  }
  load_pipeline_cache();
}

void Device::create_device() {
  uint32_t qn = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical_, &qn, nullptr);
  std::vector<VkQueueFamilyProperties> qf(qn);
  vkGetPhysicalDeviceQueueFamilyProperties(physical_, &qn, qf.data());
  bool found = false;
  // Prefer a compute queue family; any with COMPUTE works.
  for (uint32_t i = 0; i < qn && !found; ++i)
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
      queue_family_ = i;
      found = true;
    }
  if (!found) throw NoDevice("device '" + caps_.name + "' has no compute queue");

  const bool core12 = std::min(caps_.api_version, instance_->api_version()) >= VK_API_VERSION_1_2;
  std::vector<const char*> exts;
  auto want = [&](const char* e) {
    if (caps_.has_extension(e)) exts.push_back(e);
  };
  if (!core12) {
    want(VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    want(VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
  }
  want(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
  auto enabled = [&](const char* e) {
    return std::find_if(exts.begin(), exts.end(), [&](const char* x) { return std::strcmp(x, e) == 0; }) != exts.end();
  };

  VkPhysicalDevice16BitStorageFeatures s16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
  s16.storageBuffer16BitAccess = caps_.storage_16bit;
  VkPhysicalDeviceShaderFloat16Int8Features f16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
  f16.shaderFloat16 = caps_.fp16_arith;
  f16.shaderInt8 = caps_.int8_arith;
  VkPhysicalDevice8BitStorageFeatures s8{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
  s8.storageBuffer8BitAccess = caps_.storage_8bit;
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  feats.pNext = &s16;
  void** tail = &s16.pNext;
  if (core12 || enabled(VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME)) {
    *tail = &f16;
    tail = &f16.pNext;
  }
  if (core12 || enabled(VK_KHR_8BIT_STORAGE_EXTENSION_NAME)) {
    *tail = &s8;
    tail = &s8.pNext;
  }
  VkPhysicalDeviceFeatures supported{};
  vkGetPhysicalDeviceFeatures(physical_, &supported);
  feats.features.shaderInt64 = supported.shaderInt64;

  const float prio = 1.0f;
  VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qci.queueFamilyIndex = queue_family_;
  qci.queueCount = 1;
  qci.pQueuePriorities = &prio;
  VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  dci.pNext = &feats;
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &qci;
  dci.enabledExtensionCount = static_cast<uint32_t>(exts.size());
  dci.ppEnabledExtensionNames = exts.data();
  check(vkCreateDevice(physical_, &dci, nullptr, &device_), "vkCreateDevice");
  vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

  VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pci.queueFamilyIndex = queue_family_;
  check(vkCreateCommandPool(device_, &pci, nullptr, &command_pool_), "vkCreateCommandPool");
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  check(vkCreateFence(device_, &fci, nullptr, &fence_), "vkCreateFence");
}

void Device::load_pipeline_cache() {
  std::vector<char> data;
  if (!pipeline_cache_path_.empty() && std::filesystem::exists(pipeline_cache_path_)) {
    std::ifstream in(pipeline_cache_path_, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
    // Validate the header ourselves: some drivers crash on foreign or corrupt cache data.
    bool ok = data.size() >= 32;
    if (ok) {
      std::uint32_t hdr[4];
      std::memcpy(hdr, data.data(), sizeof hdr);
      ok = hdr[0] >= 32 && hdr[0] <= data.size() && hdr[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
           hdr[2] == caps_.vendor_id && hdr[3] == caps_.device_id &&
           std::memcmp(data.data() + 16, caps_.pipeline_cache_uuid.data(), VK_UUID_SIZE) == 0;
    }
    if (!ok) {
      std::fprintf(stderr, "pocketlora: warning: ignoring pipeline cache '%s' (corrupt or from another driver)\n",
                   pipeline_cache_path_.c_str());
      data.clear();
    }
  }
  VkPipelineCacheCreateInfo ci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  ci.initialDataSize = data.size();
  ci.pInitialData = data.empty() ? nullptr : data.data();
  check(vkCreatePipelineCache(device_, &ci, nullptr, &pipeline_cache_), "vkCreatePipelineCache");
}

void Device::save_pipeline_cache() const {
  if (pipeline_cache_path_.empty() || !pipeline_cache_) return;
  size_t n = 0;
  if (vkGetPipelineCacheData(device_, pipeline_cache_, &n, nullptr) != VK_SUCCESS || n == 0) return;
  std::vector<char> data(n);
  if (vkGetPipelineCacheData(device_, pipeline_cache_, &n, data.data()) != VK_SUCCESS) return;
  data.resize(n);
  write_atomically(pipeline_cache_path_, data);
}

void Device::wait_idle() {
  if (device_) vkDeviceWaitIdle(device_);  // its result is the device's state, reported by the next submit
}

Device::~Device() {
  if (!device_) return;
  vkDeviceWaitIdle(device_);
  save_pipeline_cache();
  staging_.reset();
  for (auto& [k, p] : pipelines_) {
    vkDestroyPipeline(device_, p->pipeline, nullptr);
    vkDestroyPipelineLayout(device_, p->layout, nullptr);
    vkDestroyDescriptorSetLayout(device_, p->set_layout, nullptr);
  }
  if (pipeline_cache_) vkDestroyPipelineCache(device_, pipeline_cache_, nullptr);
  if (fence_) vkDestroyFence(device_, fence_, nullptr);
  if (command_pool_) vkDestroyCommandPool(device_, command_pool_, nullptr);
  vkDestroyDevice(device_, nullptr);
}

const Pipeline& Device::pipeline(const PipelineKey& key) {
  std::lock_guard lock(mu_);
  if (auto it = pipelines_.find(key); it != pipelines_.end()) return *it->second;
  if (key.push_size > caps_.max_push_constants)
    throw DeviceLimitError("shader '" + std::string(key.shader.name()) + "' needs " + std::to_string(key.push_size) +
                  " bytes of push constants; device allows " + std::to_string(caps_.max_push_constants));
  auto code = shader_spirv(key.shader);
  auto p = std::make_unique<Pipeline>(Pipeline{key});

  std::vector<VkDescriptorSetLayoutBinding> binds(key.num_buffers);
  for (uint32_t i = 0; i < key.num_buffers; ++i)
    binds[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo dl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dl.bindingCount = key.num_buffers;
  dl.pBindings = binds.data();
  check(vkCreateDescriptorSetLayout(device_, &dl, nullptr, &p->set_layout), "vkCreateDescriptorSetLayout");

  VkPushConstantRange pr{VK_SHADER_STAGE_COMPUTE_BIT, 0, key.push_size};
  VkPipelineLayoutCreateInfo pl{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pl.setLayoutCount = 1;
  pl.pSetLayouts = &p->set_layout;
  pl.pushConstantRangeCount = key.push_size ? 1 : 0;
  pl.pPushConstantRanges = key.push_size ? &pr : nullptr;
  check(vkCreatePipelineLayout(device_, &pl, nullptr, &p->layout), "vkCreatePipelineLayout");

  VkShaderModuleCreateInfo sm{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  sm.codeSize = code.size() * sizeof(std::uint32_t);
  sm.pCode = code.data();
  VkShaderModule module = VK_NULL_HANDLE;
  check(vkCreateShaderModule(device_, &sm, nullptr, &module), ("vkCreateShaderModule(" + std::string(key.shader.name()) + ")").c_str());

  std::vector<VkSpecializationMapEntry> entries(key.spec.size());
  for (uint32_t i = 0; i < key.spec.size(); ++i) entries[i] = {i, i * 4u, 4};
  VkSpecializationInfo si{static_cast<uint32_t>(entries.size()), entries.data(), key.spec.size() * 4, key.spec.data()};
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = module;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = key.spec.empty() ? nullptr : &si;
  ci.layout = p->layout;
  VkResult r = vkCreateComputePipelines(device_, pipeline_cache_, 1, &ci, nullptr, &p->pipeline);
  vkDestroyShaderModule(device_, module, nullptr);
  check(r, ("vkCreateComputePipelines(" + std::string(key.shader.name()) + ")").c_str());
  return *pipelines_.emplace(key, std::move(p)).first->second;
}

std::uint32_t Device::memory_type(MemoryKind kind, std::uint32_t type_bits) const {
  const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  // Preference lists: unified memory first for device buffers (no staging copies on phones).
  std::vector<VkMemoryPropertyFlags> prefs = kind == MemoryKind::Device
                                                 ? std::vector<VkMemoryPropertyFlags>{dl | host, dl, host}
                                                 : std::vector<VkMemoryPropertyFlags>{host};
  for (auto want : prefs)
    for (uint32_t i = 0; i < mem_props_.memoryTypeCount; ++i)
      if ((type_bits & (1u << i)) && (mem_props_.memoryTypes[i].propertyFlags & want) == want) return i;
  throw NoDevice("device '" + caps_.name + "' has no suitable memory type for " +
                 (kind == MemoryKind::Device ? "device" : "staging") + " buffers");
}

VkMemoryPropertyFlags Device::memory_type_flags(std::uint32_t type) const {
  return mem_props_.memoryTypes[type].propertyFlags;
}
std::uint32_t Device::heap_of(std::uint32_t type) const { return mem_props_.memoryTypes[type].heapIndex; }

void Device::reserve_heap(std::uint32_t heap, VkDeviceSize size, const std::string& what) {
  std::lock_guard lock(mu_);
  const auto& h = caps_.heaps.at(heap);
  const VkDeviceSize limit = h.budget > h.usage ? h.budget - h.usage : 0;
  if (heap_allocated_[heap] + size > limit)
    throw OutOfMemory(VK_ERROR_OUT_OF_DEVICE_MEMORY, "allocating " + what + " on heap " + std::to_string(heap),
                      size, limit);
  heap_allocated_[heap] += size;
  peak_allocated_ = std::max(peak_allocated_, allocated_bytes_locked());
}

void Device::release_heap(std::uint32_t heap, VkDeviceSize size) {
  std::lock_guard lock(mu_);
  heap_allocated_[heap] -= std::min(heap_allocated_[heap], size);
}

VkDeviceSize Device::allocated_bytes() const {
  std::lock_guard lock(mu_);
  return allocated_bytes_locked();
}

VkDeviceSize Device::allocated_bytes_locked() const {
  VkDeviceSize s = 0;
  for (auto v : heap_allocated_) s += v;
  return s;
}

void Device::submit_and_wait(VkCommandBuffer cmd, const char* what) {
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd;
  std::lock_guard lock(mu_);
  check(vkResetFences(device_, 1, &fence_), "vkResetFences");
  check(vkQueueSubmit(queue_, 1, &si, fence_), what);
  // A generous timeout turns a hung GPU into an error instead of a frozen app (profile "submit_timeout_s": a
  // CPU driver runs a 1B model's whole step as one submit for minutes). A timed-out submit may still be running:
  // whoever frees its memory waits for the device first (wait_idle).
  const auto timeout_s = static_cast<std::uint64_t>(std::max<std::int64_t>(profile_.param("submit_timeout_s"), 1));
  VkResult r = vkWaitForFences(device_, 1, &fence_, VK_TRUE, timeout_s * 1000 * 1000 * 1000);
  if (r == VK_TIMEOUT)
    throw VulkanError(r, std::string(what) + ": GPU did not finish within " + std::to_string(timeout_s) +
                             " s (profile submit_timeout_s)");
  check(r, what);
}

void Device::upload(const BufferSlice& dst, const void* src, VkDeviceSize size) {
  if (size > dst.size) throw InternalError("upload of " + std::to_string(size) + " bytes into a " +
                                     std::to_string(dst.size) + "-byte slice");
  if (dst.mapped) {
    std::memcpy(dst.mapped, src, size);
    return;
  }
  copy_via_staging(dst, const_cast<void*>(src), size, true);
}

void Device::download(const BufferSlice& src, void* dst, VkDeviceSize size) {
  if (size > src.size) throw InternalError("download of " + std::to_string(size) + " bytes from a " +
                                     std::to_string(src.size) + "-byte slice");
  if (src.mapped) {
    std::memcpy(dst, src.mapped, size);
    return;
  }
  copy_via_staging(src, dst, size, false);
}

void Device::copy_via_staging(const BufferSlice& dev, void* host, VkDeviceSize size, bool to_device) {
  if (!staging_) staging_ = std::make_unique<Arena>(*this, Lifetime::Scratch, "staging", MemoryKind::Staging);
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = command_pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cmd;
  check(vkAllocateCommandBuffers(device_, &ai, &cmd), "vkAllocateCommandBuffers");
  const VkDeviceSize chunk = block_size_;
  try {
    for (VkDeviceSize off = 0; off < size; off += chunk) {
      const VkDeviceSize n = std::min(chunk, size - off);
      staging_->reset();
      BufferSlice st = staging_->allocate(n, "staging copy");
      auto* h = static_cast<std::uint8_t*>(host) + off;
      if (to_device) std::memcpy(st.mapped, h, n);
      check(vkResetCommandBuffer(cmd, 0), "vkResetCommandBuffer");
      VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
      bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
      check(vkBeginCommandBuffer(cmd, &bi), "vkBeginCommandBuffer");
      // Everything previously submitted has completed (submit_and_wait), so no barrier is needed before.
      VkBufferCopy region{to_device ? st.offset : dev.offset + off, to_device ? dev.offset + off : st.offset, n};
      vkCmdCopyBuffer(cmd, to_device ? st.buffer : dev.buffer, to_device ? dev.buffer : st.buffer, 1, &region);
      check(vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
      submit_and_wait(cmd, to_device ? "upload" : "download");
      if (!to_device) std::memcpy(h, st.mapped, n);
    }
  } catch (...) {
    vkFreeCommandBuffers(device_, command_pool_, 1, &cmd);
    throw;
  }
  vkFreeCommandBuffers(device_, command_pool_, 1, &cmd);
}

}  // namespace pocketlora::vk
