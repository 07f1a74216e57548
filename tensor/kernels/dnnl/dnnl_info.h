// Version and ISA of the oneDNN library in use (for run manifests); no oneDNN types leak out.
#pragma once
#include <string>

namespace dearest {
std::string dnnl_version_string();
std::string dnnl_isa_string();
}  // namespace dearest
