#include "tensor/kernels/dnnl/pool_dnnl.h"

#include <optional>

#include "tensor/kernels/dnnl/dnnl_context.h"

namespace dearest::dnnlk {

namespace {

using dnnl::memory;

struct PoolEntry {
  dnnl::pooling_forward::primitive_desc fwd_pd;
  dnnl::pooling_forward fwd;
  std::optional<dnnl::pooling_backward::primitive_desc> bwd_pd;
  std::optional<dnnl::pooling_backward> bwd;
  Shape y;
};

// oneDNN wants explicit right padding; this one reproduces PyTorch's output size (ceil_mode too).
int64_t right_pad(int64_t in, int64_t out, int64_t k, int64_t s, int64_t pl) {
  return std::max<int64_t>(0, (out - 1) * s + k - in - pl);
}

dnnl::algorithm alg_of(const Pool2dParams& p, bool is_max) {
  if (is_max) return dnnl::algorithm::pooling_max;
  return p.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                             : dnnl::algorithm::pooling_avg_exclude_padding;
}

PoolEntry& entry(const memory::desc& src_md, const Shape& xs, const Pool2dParams& p, bool is_max) {
  static PrimitiveCache<PoolEntry> cache;
  return cache.get(key_of(src_md) + p.str() + (is_max ? "max" : "avg"), [&] {
    Shape y{xs[0], xs[1], pool_out_size(xs[2], p.kernel_h, p.stride_h, p.pad_h, p.ceil_mode),
            pool_out_size(xs[3], p.kernel_w, p.stride_w, p.pad_w, p.ceil_mode)};
    memory::dims pr{right_pad(xs[2], y[2], p.kernel_h, p.stride_h, p.pad_h),
                    right_pad(xs[3], y[3], p.kernel_w, p.stride_w, p.pad_w)};
    dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_training, alg_of(p, is_max), src_md,
                                  memory::desc(to_dims(y), dt::f32, tag::any), {p.stride_h, p.stride_w},
                                  {p.kernel_h, p.kernel_w}, {p.pad_h, p.pad_w}, pr);
    dnnl::pooling_forward::primitive_desc pd(d, default_attr(), engine());
    note_impl(std::string(is_max ? "maxpool " : "avgpool ") + shape_str(xs) + " " + p.str(), pd.impl_info_str());
    return PoolEntry{pd, dnnl::pooling_forward(pd), {}, {}, y};
  });
}

Tensor dense(const Tensor& t) { return t.is_blocked() ? t : t.contiguous(); }

}  // namespace

bool pool_supported(const Pool2dParams& p, bool is_max) {
  // With ceil_mode a window may run past the right padding, where PyTorch's include-pad divisor
  // shrinks but oneDNN's does not; that case stays on the reference kernel.
  return is_max || !(p.ceil_mode && p.count_include_pad);
}

Tensor pool2d_forward(const Tensor& x_in, const Pool2dParams& p, bool is_max, Tensor* workspace) try {
  Tensor x = dense(x_in);
  memory::desc src_md = desc_of(x);
  PoolEntry& e = entry(src_md, x.shape(), p, is_max);
  const auto& pd = e.fwd_pd;
  Tensor y = make_tensor(pd.dst_desc(), e.y, DType::F32);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory_of(x)},
                                       {DNNL_ARG_DST, memory_of(y, pd.dst_desc())},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad_for(pd.scratchpad_desc())}};
  if (is_max) {
    Tensor ws = make_workspace(pd.workspace_desc());
    args[DNNL_ARG_WORKSPACE] = memory_of(ws, pd.workspace_desc());
    if (workspace) *workspace = ws;
  }
  execute(e.fwd, args);
  return finish(y);
} catch (const dnnl::error& e) {
  fail("pool2d_forward (oneDNN): ", e.what());
}

Tensor pool2d_backward(const Tensor& gy_in, const Tensor& x_in, const Tensor& workspace, const Pool2dParams& p,
                       bool is_max) try {
  Tensor x = dense(x_in);
  memory::desc src_md = desc_of(x);
  PoolEntry& e = entry(src_md, x.shape(), p, is_max);
  if (!e.bwd_pd) {
    memory::dims pr{right_pad(x.size(2), e.y[2], p.kernel_h, p.stride_h, p.pad_h),
                    right_pad(x.size(3), e.y[3], p.kernel_w, p.stride_w, p.pad_w)};
    dnnl::pooling_backward::desc d(alg_of(p, is_max), src_md, e.fwd_pd.dst_desc(), {p.stride_h, p.stride_w},
                                   {p.kernel_h, p.kernel_w}, {p.pad_h, p.pad_w}, pr);
    e.bwd_pd.emplace(d, default_attr(), engine(), e.fwd_pd);
    e.bwd.emplace(*e.bwd_pd);
  }
  const auto& pd = *e.bwd_pd;
  Tensor gy = reorder_to(dense(gy_in), pd.diff_dst_desc());
  Tensor gx = make_tensor(pd.diff_src_desc(), x.shape(), DType::F32);
  std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, memory_of(gy, pd.diff_dst_desc())},
                                       {DNNL_ARG_DIFF_SRC, memory_of(gx, pd.diff_src_desc())},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad_for(pd.scratchpad_desc())}};
  if (is_max) {
    DEAREST_CHECK(workspace.defined() && workspace.is_blocked(), "max_pool2d backward: missing oneDNN workspace");
    args[DNNL_ARG_WORKSPACE] = memory_of(workspace);
  }
  execute(*e.bwd, args);
  return finish(gx);
} catch (const dnnl::error& e) {
  fail("pool2d_backward (oneDNN): ", e.what());
}

}  // namespace dearest::dnnlk
