#include "tools/serve/event_hub.h"

namespace pocketlora::serve {

std::optional<AppEvent> Subscription::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(hub_.mu_);
  hub_.cv_.wait_for(lock, timeout, [&] { return hub_.closed_ || !queue_.empty(); });
  if (hub_.closed_ || queue_.empty()) return std::nullopt;
  AppEvent e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

bool Subscription::closed() const {
  std::lock_guard lock(hub_.mu_);
  return hub_.closed_;
}

std::shared_ptr<Subscription> EventHub::subscribe() {
  std::shared_ptr<Subscription> s(new Subscription(*this));
  std::lock_guard lock(mu_);
  subs_.insert(s);
  return s;
}

void EventHub::unsubscribe(const std::shared_ptr<Subscription>& s) {
  std::lock_guard lock(mu_);
  subs_.erase(s);
}

void EventHub::publish(const std::string& name, nlohmann::json data) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    for (const auto& s : subs_) {
      if (s->queue_.size() >= kMaxQueued) s->queue_.pop_front();
      s->queue_.push_back({name, data});
    }
  }
  cv_.notify_all();
}

void EventHub::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

std::size_t EventHub::subscribers() const {
  std::lock_guard lock(mu_);
  return subs_.size();
}

}  // namespace pocketlora::serve
