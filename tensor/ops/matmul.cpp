#include "tensor/ops/matmul.h"

#include "tensor/kernels/blas.h"
#include "tensor/kernels/ref/ref_kernels.h"
#include "tensor/ops/elementwise.h"
#include "tensor/runtime.h"

namespace dearest::raw {

namespace {

// A 2-d matrix view usable by GEMM: row-major contiguous, or the transpose of one.
struct Mat {
  Tensor base;  // the contiguous tensor holding the bytes
  bool trans;
  int64_t ld;
};

Mat as_gemm_operand(const Tensor& m) {
  // m is 2-d plain. Row-major contiguous rows -> no transpose; column-major -> transpose flag.
  if (m.strides()[1] == 1 && m.strides()[0] >= std::max<int64_t>(1, m.shape()[1])) return {m, false, m.strides()[0]};
  if (m.strides()[0] == 1 && m.strides()[1] >= std::max<int64_t>(1, m.shape()[0])) return {m, true, m.strides()[1]};
  Tensor c = m.contiguous();
  return {c, false, std::max<int64_t>(1, c.shape()[1])};
}

template <typename T>
void gemm_2d(const Tensor& a, const Tensor& b, Tensor& c, int64_t m, int64_t n, int64_t k) {
  T* pc = c.data<T>();
  if (backend() == Backend::Reference) {
    ref::matmul<T>(a.data<T>(), a.strides()[0], a.strides()[1], b.data<T>(), b.strides()[0], b.strides()[1], pc, m, n,
                   k);
    return;
  }
  Mat A = as_gemm_operand(a), B = as_gemm_operand(b);
  if constexpr (std::is_same_v<T, float>)
    blas_sgemm(A.trans, B.trans, m, n, k, 1.f, A.base.template data<T>(), A.ld, B.base.template data<T>(), B.ld, 0.f,
               pc, std::max<int64_t>(1, n));
  else
    blas_dgemm(A.trans, B.trans, m, n, k, 1.0, A.base.template data<T>(), A.ld, B.base.template data<T>(), B.ld, 0.0,
               pc, std::max<int64_t>(1, n));
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = a_in.plain(), b = b_in.plain();
  DEAREST_CHECK(a.dtype() == b.dtype(), "matmul: dtype mismatch: ", a.describe(), " and ", b.describe());
  DEAREST_CHECK(is_floating(a.dtype()), "matmul: needs floating tensors, got ", a.describe());
  DEAREST_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: 0-d operand: ", a.describe(), " @ ", b.describe());
  const bool a_vec = a.dim() == 1, b_vec = b.dim() == 1;
  if (a_vec) a = a.unsqueeze(0);
  if (b_vec) b = b.unsqueeze(1);
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  DEAREST_CHECK(b.size(-2) == k, "matmul: inner dims differ: ", shape_str(a_in.shape()), " @ ", shape_str(b_in.shape()));
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {m, k});
  eb.insert(eb.end(), {k, n});
  a = a.expand(ea);
  b = b.expand(eb);
  const int64_t nb = shape_numel(batch);
  Shape out_shape = batch;
  out_shape.insert(out_shape.end(), {m, n});
  Tensor out = Tensor::empty(out_shape, a.dtype());
  if (k == 0) out.zero_();
  if (k == 0 || m == 0 || n == 0 || nb == 0) {
    if (a_vec) out = out.squeeze(-2);
    if (b_vec) out = out.squeeze(-1);
    return out;
  }
  // Walk the batch with views; each product is one GEMM.
  Tensor o3 = out.reshape({nb, m, n});
  std::vector<int64_t> idx(batch.size(), 0);
  for (int64_t i = 0; i < nb; ++i) {
    Tensor ai = a, bi = b;
    int64_t r = i;
    for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
      idx[d] = r % batch[d];
      r /= batch[d];
    }
    for (size_t d = 0; d < batch.size(); ++d) {
      ai = ai.select(0, idx[d]);
      bi = bi.select(0, idx[d]);
    }
    Tensor oi = o3.select(0, i);
    dispatch_dtype(a.dtype(), [&](auto z) {
      using T = decltype(z);
      if constexpr (std::is_floating_point_v<T>) gemm_2d<T>(ai, bi, oi, m, n, k);
    });
  }
  if (a_vec) out = out.squeeze(-2);
  if (b_vec) out = out.squeeze(-1);
  return out;
}

Tensor linear(const Tensor& x_in, const Tensor& w_in, const Tensor& bias) {
  Tensor x = x_in.plain(), w = w_in.plain();
  DEAREST_CHECK(w.dim() == 2, "linear: weight must be 2-d [out, in], got ", shape_str(w.shape()));
  DEAREST_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "linear: input ", shape_str(x.shape()),
                " does not end in the weight's in_features ", w.size(1), " (weight ", shape_str(w.shape()), ")");
  DEAREST_CHECK(x.dtype() == w.dtype(), "linear: dtype mismatch: input ", x.describe(), ", weight ", w.describe());
  Shape out_shape = x.shape();
  out_shape.back() = w.size(0);
  Tensor x2 = x.reshape({-1, w.size(1)});
  Tensor y = matmul(x2, w.transpose(0, 1));
  if (bias.defined()) {
    DEAREST_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0), "linear: bias ", shape_str(bias.shape()),
                  " does not match out_features ", w.size(0));
    y = binary(Binary::Add, y, bias);
  }
  return y.reshape(out_shape);
}

}  // namespace dearest::raw
