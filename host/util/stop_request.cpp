#include "host/util/stop_request.h"

#include <atomic>
#include <csignal>

namespace pocketlora {

namespace {
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

using Handler = void (*)(int);
Handler g_prev_int = SIG_DFL, g_prev_term = SIG_DFL;

extern "C" void on_stop_signal(int sig) {
  g_stop.store(true, std::memory_order_relaxed);
  std::signal(sig, SIG_DFL);  // the next one kills
}
}  // namespace

StopRequestScope::StopRequestScope() {
  g_prev_int = std::signal(SIGINT, on_stop_signal);
  g_prev_term = std::signal(SIGTERM, on_stop_signal);
}

StopRequestScope::~StopRequestScope() {
  std::signal(SIGINT, g_prev_int == SIG_ERR ? SIG_DFL : g_prev_int);
  std::signal(SIGTERM, g_prev_term == SIG_ERR ? SIG_DFL : g_prev_term);
}

bool stop_requested() { return g_stop.load(std::memory_order_relaxed); }
void request_stop() { g_stop.store(true, std::memory_order_relaxed); }
void clear_stop_request() { g_stop.store(false, std::memory_order_relaxed); }

}  // namespace pocketlora
