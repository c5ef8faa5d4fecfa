#include "host/ref/parallel.h"

#include <atomic>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

#include "host/ref/blas.h"

namespace pocketlora::ref {

namespace {

// Workers sleep on `generation_` between jobs; a job bumps it, each worker runs its index (if the job has one)
// and counts itself off `pending_`, on which the caller sleeps. One job at a time (`busy_`).
class ThreadPool {
 public:
  explicit ThreadPool(int workers) : errors_(static_cast<std::size_t>(workers) + 1) {
    threads_.reserve(static_cast<std::size_t>(workers));
    for (int w = 1; w <= workers; ++w) threads_.emplace_back([this, w] { work(w); });
  }

  // Joined at exit (static destruction), so sanitizers see no live threads.
  ~ThreadPool() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // False (nothing run) if another job holds the pool.
  bool try_run(int threads, const std::function<void(int, int)>& fn) {
    bool idle = false;
    if (!busy_.compare_exchange_strong(idle, true, std::memory_order_acquire)) return false;
    job_ = &fn;
    job_threads_ = threads;
    for (auto& e : errors_) e = nullptr;
    pending_.store(static_cast<int>(threads_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    guarded(0);
    for (int t = static_cast<int>(threads_.size()) + 1; t < threads; ++t) guarded(t);  // more than the pool has
    for (int left = pending_.load(std::memory_order_acquire); left != 0; left = pending_.load(std::memory_order_acquire))
      pending_.wait(left, std::memory_order_acquire);
    std::exception_ptr first;
    for (auto& e : errors_)
      if (e && !first) first = e;
    busy_.store(false, std::memory_order_release);
    if (first) std::rethrow_exception(first);
    return true;
  }

  int workers() const { return static_cast<int>(threads_.size()); }

 private:
  void guarded(int t) {
    try {
      (*job_)(t, job_threads_);
    } catch (...) {
      // Worker w writes slot w; the caller runs t = 0 and any t past the workers, in turn, and shares slot 0.
      auto& slot = errors_[static_cast<std::size_t>(t <= workers() ? t : 0)];
      if (!slot) slot = std::current_exception();
    }
  }

  void work(int w) {
    std::uint32_t seen = 0;
    for (;;) {
      generation_.wait(seen, std::memory_order_acquire);
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      if (w < job_threads_) guarded(w);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::vector<std::exception_ptr> errors_;  // by worker; 0: the caller
  const std::function<void(int, int)>* job_ = nullptr;
  int job_threads_ = 0;
  std::atomic<bool> busy_{false}, stop_{false};
  std::atomic<std::uint32_t> generation_{0};
  std::atomic<int> pending_{0};
};

ThreadPool& pool() {
  static ThreadPool p(cpu_threads() - 1);
  return p;
}

void run_here(int threads, const std::function<void(int, int)>& fn) {
  for (int t = 0; t < threads; ++t) fn(t, threads);
}

}  // namespace

void run_on_threads(int threads, const std::function<void(int t, int threads)>& fn) {
  if (threads <= 1) {
    fn(0, 1);
    return;
  }
  if (!pool().try_run(threads, fn)) run_here(threads, fn);
}

}  // namespace pocketlora::ref
