#pragma once
// The app page (tools/serve/web/*), embedded in the binary at build time by cmake/EmbedWebAssets.cmake: the
// server needs no files beside it, on a desktop or inside an Android app.
#include <span>
#include <string_view>

namespace pocketlora::serve {

struct WebAsset {
  std::string_view path;          // URL path: "/index.html", "/app.js"
  std::string_view content_type;  // from the extension
  std::string_view bytes;
};

std::span<const WebAsset> web_assets();
// The asset served at `path` ("/" is "/index.html"); nullptr when there is none.
const WebAsset* find_web_asset(std::string_view path);

}  // namespace pocketlora::serve
