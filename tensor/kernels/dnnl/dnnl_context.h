// The oneDNN side of a Tensor: engine and stream, memory descriptors of plain and blocked tensors,
// reorders, the scratchpad arena and the primitive cache. Only files in tensor/kernels/dnnl include
// this (and dnnl.hpp), so the 2.x -> 3.x API change touches one folder.
#pragma once
#include <dnnl.hpp>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "tensor/runtime.h"
#include "tensor/tensor.h"

namespace dearest {

class DnnlLayout {
 public:
  explicit DnnlLayout(dnnl::memory::desc md) : md(std::move(md)) {}
  dnnl::memory::desc md;
};

namespace dnnlk {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& engine();
dnnl::stream& stream();

dt to_dnnl(DType t);
dnnl::memory::dims to_dims(const Shape& s);
// The plain row-major descriptor of a shape (abcd for 4-d, ab for 2-d, ...).
dnnl::memory::desc plain_desc(const Shape& shape, DType dtype);
// The descriptor describing the tensor's bytes as they are (blocked or strided plain).
dnnl::memory::desc desc_of(const Tensor& t);
dnnl::memory memory_of(const Tensor& t);
dnnl::memory memory_of(const Tensor& t, const dnnl::memory::desc& md);  // same bytes, reinterpreted

// A fresh tensor of logical `shape` whose bytes are laid out as `md` (plain when md is row-major).
Tensor make_tensor(const dnnl::memory::desc& md, const Shape& shape, DType dtype);
// `t` with its bytes laid out as `want` (reorders only when it differs).
Tensor reorder_to(const Tensor& t, const dnnl::memory::desc& want);
// Reorders bytes described by `have` into a new tensor laid out as `want`, of logical `shape`
// (used where the logical shape and the oneDNN dims differ, e.g. grouped weights GOIHW).
Tensor reorder_bytes(const Tensor& t, const dnnl::memory::desc& have, const dnnl::memory::desc& want,
                     const Shape& shape);
// Applies the layout policy to a oneDNN op's output: under LayoutPolicy::Plain it is reordered.
Tensor finish(const Tensor& t);
// Opaque workspace tensors (max-pool indices, fused batch-norm ReLU masks) carry their desc.
Tensor make_workspace(const dnnl::memory::desc& md);

// One arena for every primitive's scratchpad (scratchpad_mode::user), grown on demand.
dnnl::memory scratchpad_for(const dnnl::memory::desc& md);
dnnl::primitive_attr default_attr();  // scratchpad_mode::user, fpmath strict

void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args);

// A small cache of primitive descriptors and primitives keyed by a string built from the op's
// parameters: replaying a layer costs a hash lookup, not a descriptor creation.
template <typename Entry> class PrimitiveCache {
 public:
  Entry& get(const std::string& key, const std::function<Entry()>& build) {
    auto it = map_.find(key);
    if (it == map_.end()) it = map_.emplace(key, build()).first;
    return it->second;
  }
  void clear() { map_.clear(); }

 private:
  std::unordered_map<std::string, Entry> map_;  // looked up only, never iterated
};

std::string key_of(const dnnl::memory::desc& md);  // a cache-key fragment for a descriptor
std::string describe(const dnnl::memory::desc& md);  // "[16, 64, 32, 32] blocked 16b", for logs

// Human-readable implementation names seen so far ("conv fwd 64x64x3x3: jit:avx2"), for manifests.
void note_impl(const std::string& what, const char* impl);
std::vector<std::string> impls_seen();

}  // namespace dnnlk
}  // namespace dearest
