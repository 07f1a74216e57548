#include "tensor/kernels/dnnl/softmax_dnnl.h"

#include "tensor/kernels/dnnl/dnnl_context.h"

namespace dearest::dnnlk {

namespace {
struct SoftmaxEntry {
  dnnl::primitive_desc_base pd;
  dnnl::primitive prim;
};
}  // namespace

Tensor softmax_forward(const Tensor& x_in, int64_t dim, bool log) try {
  Tensor x = x_in.contiguous();
  dnnl::memory::desc md = plain_desc(x.shape(), DType::F32);
  static PrimitiveCache<SoftmaxEntry> cache;
  SoftmaxEntry& e = cache.get(key_of(md) + (log ? "log" : "") + std::to_string(dim), [&]() -> SoftmaxEntry {
    if (log) {
      dnnl::logsoftmax_forward::desc d(dnnl::prop_kind::forward_training, md, int(dim));
      dnnl::logsoftmax_forward::primitive_desc pd(d, default_attr(), engine());
      return {pd, dnnl::logsoftmax_forward(pd)};
    }
    dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_training, md, int(dim));
    dnnl::softmax_forward::primitive_desc pd(d, default_attr(), engine());
    return {pd, dnnl::softmax_forward(pd)};
  });
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  execute(e.prim, {{DNNL_ARG_SRC, memory_of(x, md)},
                   {DNNL_ARG_DST, memory_of(y, md)},
                   {DNNL_ARG_SCRATCHPAD, scratchpad_for(e.pd.scratchpad_desc())}});
  return y;
} catch (const dnnl::error& e) {
  fail("softmax_forward (oneDNN): ", e.what());
}

}  // namespace dearest::dnnlk
