#include "host/ref/parallel.h"

#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pocketlora::ref {

void run_on_threads(int threads, const std::function<void(int t, int threads)>& fn) {
  if (threads <= 1) {
    fn(0, 1);
    return;
  }
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto guarded = [&](int t) {
    try {
      fn(t, threads);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
    }
  };
  {
    std::vector<std::jthread> workers;
    workers.reserve(static_cast<std::size_t>(threads - 1));
    for (int t = 1; t < threads; ++t) workers.emplace_back(guarded, t);
    guarded(0);
  }  // joins
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace pocketlora::ref
