// Process-wide engine settings: which kernels run (fast oneDNN/OpenBLAS or the plain-loop
// reference), how oneDNN outputs are laid out, and how many threads. Fixed per run and logged.
#pragma once
#include <string>
#include <vector>

namespace dearest {

enum class Backend { Fast, Reference };
// Blocked: oneDNN ops hand their outputs on in the layout oneDNN chose (nChw8c, ...), so chains
// of convs, batch-norms, ReLUs and adds never reorder. Plain: every oneDNN op output is reordered
// to NCHW at once (slower; every intermediate is then inspectable).
enum class LayoutPolicy { Blocked, Plain };
// Direct: every convolution runs oneDNN's direct algorithm (the default; the sums the engine's
// tests and fixtures pin). Winograd: oneDNN's F(4x4, 3x3) Winograd kernels wherever it has one
// (AVX-512, 3x3, stride 1, no dilation or groups) and the layer has 16 input channels or more,
// direct elsewhere. The same convolution with
// fewer multiplications, 1.4-2x faster on 3x3 layers; its rounding differs from direct's at the
// level of float32 noise, so runs are reproducible only at a fixed setting.
enum class ConvAlgorithm { Direct, Winograd };

Backend backend();
void set_backend(Backend b);
LayoutPolicy layout_policy();
void set_layout_policy(LayoutPolicy p);
ConvAlgorithm conv_algorithm();
void set_conv_algorithm(ConvAlgorithm a);
// "direct" or "winograd" (the --conv option); anything else is an error naming the option.
ConvAlgorithm parse_conv_algorithm(const std::string& s);

// Sets OpenMP's (and so oneDNN's and OpenBLAS's) thread count. Call before the first op: oneDNN
// reads it when a primitive is created, and results are only reproducible at a fixed count.
void set_num_threads(int n);
int num_threads();

// Caps oneDNN's instruction set ("avx2", "avx512_core", ... or "all"); call before the first op.
// Results are bitwise reproducible only at a fixed ISA and thread count: pin "avx2" to compare
// runs between AVX2 and AVX-512 hosts.
void set_max_isa(const std::string& isa);

// Every oneDNN primitive created so far, with the implementation oneDNN chose for it
// ("conv fwd [128, 64, 32, 32][64, 64, 3, 3] s1x1 p1x1 d1x1 g1: jit:avx512_core"), sorted.
std::vector<std::string> kernel_implementations();

// Scoped switches, restoring the previous setting on exit.
struct BackendScope {
  explicit BackendScope(Backend b) : prev(backend()) { set_backend(b); }
  ~BackendScope() { set_backend(prev); }
  Backend prev;
};
struct LayoutPolicyScope {
  explicit LayoutPolicyScope(LayoutPolicy p) : prev(layout_policy()) { set_layout_policy(p); }
  ~LayoutPolicyScope() { set_layout_policy(prev); }
  LayoutPolicy prev;
};

struct ConvAlgorithmScope {
  explicit ConvAlgorithmScope(ConvAlgorithm a) : prev(conv_algorithm()) { set_conv_algorithm(a); }
  ~ConvAlgorithmScope() { set_conv_algorithm(prev); }
  ConvAlgorithm prev;
};

// What this run executes on, as JSON: oneDNN version and ISA, OpenBLAS build and threading,
// thread count, backend, layout policy, convolution algorithm, compiler flags.
std::string runtime_manifest_json();

}  // namespace dearest
