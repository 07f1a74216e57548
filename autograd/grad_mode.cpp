#include "autograd/grad_mode.h"

namespace dearest {
namespace {
thread_local bool g_enabled = true;
}
bool grad_enabled() { return g_enabled; }
void set_grad_enabled(bool on) { g_enabled = on; }
}  // namespace dearest
