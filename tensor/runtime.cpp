#include "tensor/runtime.h"

#include <omp.h>

#include <sstream>

#include "tensor/error.h"
#include "tensor/kernels/dnnl/dnnl_info.h"
#include "tensor/kernels/blas.h"

namespace dearest {

namespace {
Backend g_backend = Backend::Fast;
LayoutPolicy g_layout = LayoutPolicy::Blocked;
ConvAlgorithm g_conv = ConvAlgorithm::Direct;
}  // namespace

Backend backend() { return g_backend; }
void set_backend(Backend b) { g_backend = b; }
LayoutPolicy layout_policy() { return g_layout; }
void set_layout_policy(LayoutPolicy p) { g_layout = p; }
ConvAlgorithm conv_algorithm() { return g_conv; }
void set_conv_algorithm(ConvAlgorithm a) { g_conv = a; }
ConvAlgorithm parse_conv_algorithm(const std::string& s) {
  DEAREST_CHECK(s == "direct" || s == "winograd", "--conv: expected direct or winograd, got \"", s, "\"");
  return s == "direct" ? ConvAlgorithm::Direct : ConvAlgorithm::Winograd;
}

void set_num_threads(int n) {
  DEAREST_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
  omp_set_num_threads(n);
}
int num_threads() { return omp_get_max_threads(); }

std::string runtime_manifest_json() {
  std::ostringstream os;
  os << "{\"dearest_version\": \"" << DEAREST_VERSION << "\", \"onednn_version\": \"" << dnnl_version_string()
     << "\", \"onednn_isa\": \"" << dnnl_isa_string() << "\", \"openblas\": \"" << blas_config_string()
     << "\", \"openblas_threading\": \"" << blas_parallel_string() << "\", \"threads\": " << num_threads()
     << ", \"backend\": \"" << (backend() == Backend::Fast ? "fast" : "reference") << "\", \"layout_policy\": \""
     << (layout_policy() == LayoutPolicy::Blocked ? "blocked" : "plain") << "\", \"conv_algorithm\": \""
     << (conv_algorithm() == ConvAlgorithm::Direct ? "direct" : "winograd") << "\", \"compiler\": \"" << __VERSION__
     << "\", \"march\": \"" << DEAREST_ARCH_STRING << "\"}";
  return os.str();
}

}  // namespace dearest
