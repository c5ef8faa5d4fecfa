#pragma once
// The contract every fuzz target checks: a parser fed arbitrary bytes either succeeds or throws one of the
// project's typed errors (pocketlora::Error and subclasses). Any other exception (nlohmann::json::type_error,
// std::out_of_range, std::length_error, ...) is a bug: it escapes the library's error model, so abort and let
// libFuzzer keep the input. Crashes and sanitizer reports abort on their own.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <typeinfo>

#include "host/core/error.h"

namespace pocketlora::fuzz {

template <typename F> int run_guarded(F&& body) {
  try {
    body();
  } catch (const Error&) {
    // A named, typed error is the correct answer to a malformed file.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: untyped exception %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz: exception that is not a std::exception\n");
    std::abort();
  }
  return 0;
}

}  // namespace pocketlora::fuzz
