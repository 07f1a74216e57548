// Whether ops record autograd history (thread-local, on by default).
#pragma once

namespace dearest {

bool grad_enabled();
void set_grad_enabled(bool on);

// Scope in which no op records history (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace dearest
