// The one exception type of dearest, and the checks that raise it. A message names the op, what
// was given and what was expected, so that nothing ever aborts the process silently.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dearest {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename A, typename... R> void append(std::ostringstream& os, const A& a, const R&... r) {
  os << a;
  append(os, r...);
}
}  // namespace detail

template <typename... A> [[noreturn]] void fail(const A&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(os.str());
}



}  // namespace dearest

// DEAREST_CHECK(cond, "conv2d: ", "weight must be 4-d, got ", shape_str(w.shape()));
#define DEAREST_CHECK(cond, ...)          \
  do {                                    \
    if (!(cond)) ::dearest::fail(__VA_ARGS__); \
  } while (0)
