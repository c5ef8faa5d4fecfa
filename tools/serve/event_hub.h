#pragma once
// Live events for the page (GET /api/events, server-sent events): publishers (the job runner's callbacks, the
// adapter routes) post named JSON events; each connected client holds a Subscription with its own queue, so a slow
// client delays nobody. A client that falls too far behind loses its oldest events (it re-reads the state with
// GET /api/jobs etc. on reconnect) rather than growing the server's memory.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace pocketlora::serve {

struct AppEvent {
  std::string name;  // "job", "step", "policy", "log", "adapters"
  nlohmann::json data;
};

class EventHub;

class Subscription {
 public:
  // The next event, waiting up to `timeout`; nullopt on timeout or once the hub is closed (see closed()).
  std::optional<AppEvent> next(std::chrono::milliseconds timeout);
  bool closed() const;

 private:
  friend class EventHub;
  explicit Subscription(EventHub& hub) : hub_(hub) {}
  EventHub& hub_;
  std::deque<AppEvent> queue_;  // under hub_.mu_
};

class EventHub {
 public:
  static constexpr std::size_t kMaxQueued = 1024;  // per subscriber

  std::shared_ptr<Subscription> subscribe();
  void unsubscribe(const std::shared_ptr<Subscription>& s);
  void publish(const std::string& name, nlohmann::json data);
  // Wakes every subscriber for good (the server is stopping): next() returns nullopt at once from now on.
  void close();
  std::size_t subscribers() const;

 private:
  friend class Subscription;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::shared_ptr<Subscription>> subs_;
  bool closed_ = false;
};

}  // namespace pocketlora::serve
