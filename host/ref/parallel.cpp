#include "host/ref/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "host/ref/blas.h"

namespace pocketlora::ref {

namespace {

// Workers sleep on `generation_` between jobs. A job bumps it; a worker that wakes enters the job only while it is
// open (`inside_` counts the workers in it) and claims chunks from `next_`. When the chunks run out the caller
// closes the job and waits only for the workers inside; one that wakes later sees it closed and goes back to sleep.
class ThreadPool {
 public:
  explicit ThreadPool(int workers) {
    threads_.reserve(static_cast<std::size_t>(workers));
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
  }

  // Joined at exit (static destruction), so sanitizers see no live threads.
  ~ThreadPool() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // False (nothing run) if another job holds the pool.
  bool try_run(std::int64_t chunks, const std::function<void(std::int64_t)>& fn) {
    bool idle = false;
    if (!busy_.compare_exchange_strong(idle, true, std::memory_order_acquire)) return false;
    job_ = &fn;
    chunks_ = chunks;
    error_ = nullptr;
    next_.store(0, std::memory_order_relaxed);
    inside_.store(0, std::memory_order_release);  // open
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    drain();
    for (std::uint32_t v = inside_.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed; v != kClosed;
         v = inside_.load(std::memory_order_acquire))
      inside_.wait(v, std::memory_order_acquire);
    const std::exception_ptr error = error_;
    busy_.store(false, std::memory_order_release);
    if (error) std::rethrow_exception(error);
    return true;
  }

 private:
  static constexpr std::uint32_t kClosed = 1u << 31;

  void drain() {
    for (std::int64_t c = next_.fetch_add(1, std::memory_order_relaxed); c < chunks_;
         c = next_.fetch_add(1, std::memory_order_relaxed)) {
      try {
        (*job_)(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void work() {
    std::uint32_t seen = 0;
    for (;;) {
      generation_.wait(seen, std::memory_order_acquire);
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      std::uint32_t v = inside_.load(std::memory_order_acquire);
      while (!(v & kClosed) && !inside_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) {
      }
      if (v & kClosed) continue;  // that job is over
      drain();
      if (inside_.fetch_sub(1, std::memory_order_acq_rel) == (kClosed | 1)) inside_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  const std::function<void(std::int64_t)>* job_ = nullptr;
  std::int64_t chunks_ = 0;
  std::exception_ptr error_;
  std::mutex error_mutex_;
  std::atomic<bool> busy_{false}, stop_{false};
  std::atomic<std::uint32_t> generation_{0}, inside_{kClosed};
  std::atomic<std::int64_t> next_{0};
};

ThreadPool& pool() {
  static ThreadPool p(cpu_threads() - 1);
  return p;
}

}  // namespace

void parallel_chunks(std::int64_t chunks, const std::function<void(std::int64_t chunk)>& fn) {
  if (chunks <= 1 || !pool().try_run(chunks, fn))
    for (std::int64_t c = 0; c < chunks; ++c) fn(c);
}

void parallel_for(std::int64_t n, std::int64_t item_cost,
                  const std::function<void(std::int64_t begin, std::int64_t end)>& fn) {
  if (n <= 0) return;
  const std::int64_t work = n * std::max<std::int64_t>(item_cost, 1);
  // Up to four ranges per thread: a worker that wakes late on a loaded machine leaves less to the others.
  const std::int64_t chunks =
      work < kParallelMinElements ? 1 : std::min<std::int64_t>(n, 4 * static_cast<std::int64_t>(cpu_threads()));
  if (chunks == 1) return fn(0, n);
  const std::int64_t per = (n + chunks - 1) / chunks;
  parallel_chunks(chunks, [&](std::int64_t c) {
    const std::int64_t b = c * per, e = std::min(n, b + per);
    if (b < e) fn(b, e);
  });
}

}  // namespace pocketlora::ref
