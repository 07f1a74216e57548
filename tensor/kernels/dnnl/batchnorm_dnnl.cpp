#include "tensor/kernels/dnnl/batchnorm_dnnl.h"

#include <optional>

#include "tensor/kernels/dnnl/dnnl_context.h"

namespace dearest::dnnlk {

namespace {

using dnnl::memory;
using flags = dnnl::normalization_flags;

struct BnEntry {
  dnnl::batch_normalization_forward::primitive_desc fwd_pd;
  dnnl::batch_normalization_forward fwd;
  std::optional<dnnl::batch_normalization_backward::primitive_desc> bwd_pd;
  std::optional<dnnl::batch_normalization_backward> bwd;
  flags f;
};

flags flags_of(bool training, bool relu) {
  flags f = flags::use_scale | flags::use_shift;
  if (!training) f = f | flags::use_global_stats;
  if (relu) f = f | flags::fuse_norm_relu;
  return f;
}

BnEntry& entry(const memory::desc& md, bool training, double eps, bool relu) {
  static PrimitiveCache<BnEntry> cache;
  return cache.get(key_of(md) + (training ? "T" : "I") + (relu ? "R" : "") + std::to_string(eps), [&] {
    flags f = flags_of(training, relu);
    // forward_training even for global statistics: its descriptor is the hint a backward needs.
    dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_training, md, float(eps), f);
    dnnl::batch_normalization_forward::primitive_desc pd(d, default_attr(), engine());
    note_impl(std::string("batchnorm ") + (training ? "train " : "eval ") + (relu ? "+relu " : "") + describe(md),
              pd.impl_info_str());
    return BnEntry{pd, dnnl::batch_normalization_forward(pd), {}, {}, f};
  });
}

Tensor dense(const Tensor& t) { return t.is_blocked() ? t : t.contiguous(); }
Tensor channel_vec(const Tensor& t, int64_t C, double fill) {
  return t.defined() ? t.contiguous() : Tensor::full({C}, fill, DType::F32);
}

}  // namespace

BatchNormOut batch_norm_forward(const Tensor& x_in, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                const Tensor& var, bool training, double eps, bool relu) try {
  Tensor x = dense(x_in);
  const int64_t C = x.size(1);
  memory::desc md = desc_of(x);
  BnEntry& e = entry(md, training, eps, relu);
  BatchNormOut out;
  out.y = make_tensor(md, x.shape(), DType::F32);
  out.mean = training ? Tensor::empty({C}, DType::F32) : mean.contiguous();
  out.var = training ? Tensor::empty({C}, DType::F32) : var.contiguous();
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory_of(x)},
                                       {DNNL_ARG_DST, memory_of(out.y, md)},
                                       {DNNL_ARG_SCALE, memory_of(channel_vec(gamma, C, 1))},
                                       {DNNL_ARG_SHIFT, memory_of(channel_vec(beta, C, 0))},
                                       {DNNL_ARG_MEAN, memory_of(out.mean)},
                                       {DNNL_ARG_VARIANCE, memory_of(out.var)},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad_for(e.fwd_pd.scratchpad_desc())}};
  if (relu) {
    out.workspace = make_workspace(e.fwd_pd.workspace_desc());
    args[DNNL_ARG_WORKSPACE] = memory_of(out.workspace);
  }
  execute(e.fwd, args);
  out.y = finish(out.y);
  return out;
} catch (const dnnl::error& e) {
  fail("batch_norm_forward (oneDNN): ", e.what());
}

void batch_norm_backward(const Tensor& gy_in, const Tensor& x_in, const Tensor& gamma, const Tensor& beta,
                         const Tensor& mean, const Tensor& var, const Tensor& workspace, bool training, double eps,
                         bool relu, Tensor& gx, Tensor& ggamma, Tensor& gbeta) try {
  Tensor x = dense(x_in);
  const int64_t C = x.size(1);
  memory::desc md = desc_of(x);
  BnEntry& e = entry(md, training, eps, relu);
  if (!e.bwd_pd) {
    dnnl::batch_normalization_backward::desc d(dnnl::prop_kind::backward, md, md, float(eps), e.f);
    e.bwd_pd.emplace(d, default_attr(), engine(), e.fwd_pd);
    e.bwd.emplace(*e.bwd_pd);
  }
  Tensor gy = reorder_to(dense(gy_in), md);  // src, diff_dst and diff_src in one format: the fast path
  gx = make_tensor(md, x.shape(), DType::F32);
  ggamma = Tensor::empty({C}, DType::F32);
  gbeta = Tensor::empty({C}, DType::F32);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory_of(x)},
                                       {DNNL_ARG_DIFF_DST, memory_of(gy, md)},
                                       {DNNL_ARG_MEAN, memory_of(mean.contiguous())},
                                       {DNNL_ARG_VARIANCE, memory_of(var.contiguous())},
                                       {DNNL_ARG_SCALE, memory_of(channel_vec(gamma, C, 1))},
                                       {DNNL_ARG_SHIFT, memory_of(channel_vec(beta, C, 0))},
                                       {DNNL_ARG_DIFF_SRC, memory_of(gx, md)},
                                       {DNNL_ARG_DIFF_SCALE, memory_of(ggamma)},
                                       {DNNL_ARG_DIFF_SHIFT, memory_of(gbeta)},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad_for(e.bwd_pd->scratchpad_desc())}};
  if (relu) {
    DEAREST_CHECK(workspace.defined(), "batch_norm backward: the fused ReLU's workspace is missing");
    args[DNNL_ARG_WORKSPACE] = memory_of(workspace);
  }
  execute(*e.bwd, args);
  gx = finish(gx);
} catch (const dnnl::error& e) {
  fail("batch_norm_backward (oneDNN): ", e.what());
}

}  // namespace dearest::dnnlk
