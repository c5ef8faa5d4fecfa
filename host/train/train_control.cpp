#include "host/train/train_control.h"

#include <chrono>

namespace pocketlora {

void TrainControl::request_stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void TrainControl::request_pause() {
  {
    std::lock_guard lock(mu_);
    pause_ = true;
  }
  cv_.notify_all();
}

void TrainControl::resume() {
  {
    std::lock_guard lock(mu_);
    pause_ = false;
  }
  cv_.notify_all();
}

bool TrainControl::stop_requested() const {
  std::lock_guard lock(mu_);
  return stop_;
}

bool TrainControl::pause_requested() const {
  std::lock_guard lock(mu_);
  return pause_;
}

bool TrainControl::wait_while_paused() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stop_ || !pause_; });
  return !stop_;
}

void TrainControl::sleep_for(double seconds) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stop_ || pause_; });
}

}  // namespace pocketlora
