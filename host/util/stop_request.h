#pragma once
// Ctrl-C / SIGTERM as a request, not a kill: the first signal sets a flag that
// long-running work (the trainer) polls at safe points — it finishes the
// micro-step, writes a checkpoint and returns. A second signal restores the
// default action, so a stuck process can still be interrupted.
namespace pocketlora {

// Installs the handlers for SIGINT and SIGTERM (idempotent; restored by the
// returned guard's destructor).
class StopRequestScope {
 public:
  StopRequestScope();
  ~StopRequestScope();
  StopRequestScope(const StopRequestScope&) = delete;
  StopRequestScope& operator=(const StopRequestScope&) = delete;
};

bool stop_requested();
void request_stop();  // the same flag, set from code (tests, the C API's cancel)
void clear_stop_request();

}  // namespace pocketlora
