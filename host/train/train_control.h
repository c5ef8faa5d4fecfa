#pragma once
// A per-run control of the trainer for a host program (the C API): stop, pause and resume from any thread. The
// process-wide Ctrl-C flag (host/util/stop_request.h) stops every run in the process and installs signal handlers,
// neither of which an app embedding several jobs wants; a run given a TrainControl uses it instead of both.
//
// The trainer polls it between optimizer steps (the unit a checkpoint resumes at exactly). A pause means what a
// device-policy pause means: write a checkpoint, release the step engine and the backend the trainer made, wait,
// and on resume rebuild them from that checkpoint, so a paused and resumed run ends bit-identical to one that never
// paused (CPU backend). A stop ends the run after a checkpoint, as Ctrl-C does (TrainSummary::interrupted).
#include <condition_variable>
#include <functional>
#include <mutex>

namespace pocketlora {

class TrainControl {
 public:
  void request_stop();
  void request_pause();
  void resume();  // lifts a pause (also one not yet taken)
  bool stop_requested() const;
  bool pause_requested() const;

  // Called by the trainer on its own thread once a pause has taken effect (checkpoint written, memory released:
  // true) and when it ends (false). Set before the run starts; never called concurrently.
  std::function<void(bool paused)> on_pause_change;

  // Trainer side: blocks while a pause is requested and no stop; false when the run is to stop.
  bool wait_while_paused();
  // Sleeps up to `seconds`, returning early when a stop or pause is requested (a device policy's poll interval).
  void sleep_for(double seconds);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, pause_ = false;
};

}  // namespace pocketlora
