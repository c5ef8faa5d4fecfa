// pl_adapter_store_*: list, import, enable/disable, export and delete the adapters of an on-device store.
#include "api/adapter_store.h"

#include <nlohmann/json.hpp>

#include "api/model.h"
#include "host/core/error.h"
#include "host/train/adapter_base.h"
#include "host/train/adapter_origin.h"

using namespace pocketlora;
using namespace pocketlora::capi;

namespace {

std::shared_ptr<pl_adapter_store> store_arg(pl_adapter_store* s, const char* fn) {
  return get<pl_adapter_store>(s, fn, "pl_adapter_store");
}

}  // namespace

extern "C" {

pl_status pl_adapter_store_open(const char* root, pl_adapter_store** out) {
  return guarded("pl_adapter_store_open", [&] {
    require(out, "pl_adapter_store_open", "out");
    *out = nullptr;
    auto s = std::make_shared<pl_adapter_store>(root ? std::filesystem::path(root) : AdapterStore::default_root());
    register_handle(s);
    *out = s.get();
  });
}

pl_status pl_adapter_store_close(pl_adapter_store* store) {
  return guarded("pl_adapter_store_close",
                 [&] { release<pl_adapter_store>(store, "pl_adapter_store_close", "pl_adapter_store"); });
}

pl_status pl_adapter_store_list(pl_adapter_store* store, char** json_out) {
  return guarded("pl_adapter_store_list", [&] {
    auto s = store_arg(store, "pl_adapter_store_list");
    require(json_out, "pl_adapter_store_list", "json_out");
    std::lock_guard lock(s->mu);
    const AdapterListing l = s->store.list();
    nlohmann::json j = {{"store", s->store.root().string()},
                        {"adapters", nlohmann::json::array()},
                        {"problems", nlohmann::json::array()}};
    for (const auto& m : l.adapters) {
      nlohmann::json a = adapter_manifest_json(m);
      a["path"] = (s->store.root() / m.name).string();
      j["adapters"].push_back(std::move(a));
    }
    for (const auto& p : l.problems) j["problems"].push_back({{"path", p.path.string()}, {"error", p.message}});
    *json_out = copy_string(j.dump());
  });
}

pl_status pl_adapter_store_add(pl_adapter_store* store, pl_model* model, const char* src_dir, const char* name,
                               int force) {
  return guarded("pl_adapter_store_add", [&] {
    auto s = store_arg(store, "pl_adapter_store_add");
    auto m = get<pl_model>(model, "pl_adapter_store_add", "pl_model");
    require(src_dir, "pl_adapter_store_add", "src_dir");
    require(name, "pl_adapter_store_add", "name");
    validate_adapter_name(name);
    const AdapterOrigin origin = read_adapter_origin(src_dir);
    // A run's checkpoint names the quantization it trained with; a bare PEFT directory is taken as NF4-trained,
    // as `pocketlora adapters add` defaults.
    const AdapterBase base = adapter_base(m->model, m->path, origin.base_quant.empty() ? "nf4" : origin.base_quant);
    std::lock_guard lock(s->mu);
    s->store.add(src_dir, name, base, origin, force != 0);
  });
}

pl_status pl_adapter_store_set_enabled(pl_adapter_store* store, const char* name, int enabled) {
  return guarded("pl_adapter_store_set_enabled", [&] {
    auto s = store_arg(store, "pl_adapter_store_set_enabled");
    require(name, "pl_adapter_store_set_enabled", "name");
    std::lock_guard lock(s->mu);
    s->store.set_enabled(name, enabled != 0);
  });
}

pl_status pl_adapter_store_export(pl_adapter_store* store, const char* name, const char* out_dir) {
  return guarded("pl_adapter_store_export", [&] {
    auto s = store_arg(store, "pl_adapter_store_export");
    require(name, "pl_adapter_store_export", "name");
    require(out_dir, "pl_adapter_store_export", "out_dir");
    std::lock_guard lock(s->mu);
    s->store.export_peft(name, out_dir);
  });
}

pl_status pl_adapter_store_delete(pl_adapter_store* store, const char* name) {
  return guarded("pl_adapter_store_delete", [&] {
    auto s = store_arg(store, "pl_adapter_store_delete");
    require(name, "pl_adapter_store_delete", "name");
    std::lock_guard lock(s->mu);
    s->store.remove(name);
  });
}

}  // extern "C"
