#include "tensor/ops/reduce.h"

#include <cmath>
#include <limits>

#include "tensor/strided_loop.h"

namespace dearest::raw {

Shape reduced_shape(const Shape& in, const std::vector<int64_t>& dims, bool keepdim, const char* op,
                    std::vector<bool>* reduced_out) {
  std::vector<bool> reduced(in.size(), dims.empty());
  for (int64_t d : dims) {
    int64_t n = normalize_dim(d, static_cast<int64_t>(in.size()), op);
    if (in.empty()) continue;
    DEAREST_CHECK(!reduced[n], op, ": dim ", d, " given twice");
    reduced[n] = true;
  }
  Shape out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!reduced[i]) out.push_back(in[i]);
    else if (keepdim) out.push_back(1);
  }
  if (reduced_out) *reduced_out = reduced;
  return out;
}

namespace {

// Splits x's dims into kept (outer) and reduced (inner) and calls
// body(out_index, base_pointer, inner_layout) for every output element, in parallel over outputs.
template <typename T> struct Split {
  Shape outer_shape, outer_strides;
  StridedLayout<1> inner;
  int64_t inner_numel = 1;
};

template <typename T> Split<T> split(const Tensor& x, const std::vector<bool>& reduced) {
  Split<T> s;
  Shape ishape, istr;
  for (size_t i = 0; i < reduced.size(); ++i) {
    if (reduced[i]) {
      ishape.push_back(x.shape()[i]);
      istr.push_back(x.strides()[i]);
      s.inner_numel *= x.shape()[i];
    } else {
      s.outer_shape.push_back(x.shape()[i]);
      s.outer_strides.push_back(x.strides()[i]);
    }
  }
  s.inner = merge_dims<1>(ishape, {istr});
  return s;
}

// Visits the inner elements [begin, end) (row-major over the merged inner shape) from `base`.
template <typename T, typename F>
void walk_inner(const T* base, const StridedLayout<1>& L, int64_t begin, int64_t end, F&& f) {
  if (begin >= end) return;
  const int64_t nd = static_cast<int64_t>(L.shape.size());
  const int64_t last = L.shape[nd - 1], st = L.strides[0][nd - 1];
  std::vector<int64_t> idx(nd, 0);
  int64_t r = begin, off = 0;
  for (int64_t d = nd - 1; d >= 0; --d) {
    idx[d] = r % L.shape[d];
    r /= L.shape[d];
    off += idx[d] * L.strides[0][d];
  }
  int64_t i = begin;
  while (i < end) {
    int64_t n = std::min(last - idx[nd - 1], end - i);
    const T* p = base + off;
    if (st == 1)
      for (int64_t j = 0; j < n; ++j) f(p[j]);
    else
      for (int64_t j = 0; j < n; ++j) f(p[j * st]);
    i += n;
    off += n * st;
    idx[nd - 1] += n;
    for (int64_t d = nd - 1; d > 0 && idx[d] == L.shape[d]; --d) {
      off -= L.shape[d] * L.strides[0][d];
      idx[d] = 0;
      ++idx[d - 1];
      off += L.strides[0][d - 1];
    }
  }
}

// out[o] = finish(fold(init, inner elements of o)); `Acc` is the accumulator, combined blockwise
// with `merge` when one output has a very long inner range.
template <typename T, typename Acc, typename Out, typename Fold, typename Merge, typename Finish>
void reduce_generic(const Tensor& x, const std::vector<bool>& reduced, Out* out, Acc init, Fold fold, Merge merge,
                    Finish finish) {
  Split<T> s = split<T>(x, reduced);
  const T* base = x.data<T>();
  const int64_t nout = shape_numel(s.outer_shape);
  const int64_t ninner = s.inner_numel;
  auto outer_offset = [&](int64_t o) {
    int64_t off = 0;
    for (int64_t d = static_cast<int64_t>(s.outer_shape.size()) - 1; d >= 0; --d) {
      off += (o % s.outer_shape[d]) * s.outer_strides[d];
      o /= s.outer_shape[d];
    }
    return off;
  };
  constexpr int64_t kBlock = 65536;
  if (nout < 4 && ninner >= 2 * kBlock) {
    const int64_t nblocks = (ninner + kBlock - 1) / kBlock;
    std::vector<Acc> partial(nblocks);
    for (int64_t o = 0; o < nout; ++o) {
      const T* b = base + outer_offset(o);
#pragma omp parallel for schedule(static)
      for (int64_t k = 0; k < nblocks; ++k) {
        Acc a = init;
        walk_inner(b, s.inner, k * kBlock, std::min(ninner, (k + 1) * kBlock), [&](T v) { fold(a, v, 0); });
        partial[k] = a;
      }
      Acc total = partial[0];
      for (int64_t k = 1; k < nblocks; ++k) merge(total, partial[k], k * kBlock);
      out[o] = finish(total);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (nout * ninner >= 32768 && nout > 1)
  for (int64_t o = 0; o < nout; ++o) {
    Acc a = init;
    walk_inner(base + outer_offset(o), s.inner, 0, ninner, [&](T v) { fold(a, v, 0); });
    out[o] = finish(a);
  }
}

template <typename T> using Sum_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

}  // namespace

Tensor reduce(Reduce op, const Tensor& x_in, const std::vector<int64_t>& dims, bool keepdim) {
  static const char* names[] = {"sum", "mean", "max", "min"};
  const char* name = names[static_cast<int>(op)];
  Tensor x = x_in.plain();
  std::vector<bool> reduced;
  Shape out_shape = reduced_shape(x.shape(), dims, keepdim, name, &reduced);
  int64_t count = 1;
  for (size_t i = 0; i < reduced.size(); ++i)
    if (reduced[i]) count *= x.shape()[i];
  DEAREST_CHECK(count > 0 || op == Reduce::Sum || op == Reduce::Mean, name, ": reducing an empty dim of ",
                shape_str(x.shape()));
  DEAREST_CHECK(op != Reduce::Mean || is_floating(x.dtype()), "mean: needs a floating tensor, got ", x.describe());
  Tensor out = Tensor::empty(out_shape, x.dtype());
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    T* po = out.data<T>();
    if (op == Reduce::Sum || op == Reduce::Mean) {
      using A = Sum_t<T>;
      const double div = op == Reduce::Mean ? double(count) : 1.0;
      reduce_generic<T, A>(
          x, reduced, po, A(0), [](A& a, T v, int64_t) { a += A(v); }, [](A& a, A b, int64_t) { a += b; },
          [&](A a) { return op == Reduce::Mean ? T(double(a) / div) : T(a); });
    } else {
      const bool is_max = op == Reduce::Max;
      auto better = [is_max](T v, T cur) {
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(cur)) return false;
          if (std::isnan(v)) return true;
        }
        return is_max ? v > cur : v < cur;
      };
      T init = is_max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
      if constexpr (std::is_floating_point_v<T>)
        init = is_max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
      reduce_generic<T, T>(
          x, reduced, po, init, [&](T& a, T v, int64_t) { if (better(v, a)) a = v; },
          [&](T& a, T b, int64_t) { if (better(b, a)) a = b; }, [](T a) { return a; });
    }
  });
  return out;
}

Tensor var(const Tensor& x_in, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  Tensor x = x_in.plain();
  DEAREST_CHECK(is_floating(x.dtype()), "var: needs a floating tensor, got ", x.describe());
  std::vector<bool> reduced;
  Shape out_shape = reduced_shape(x.shape(), dims, keepdim, "var", &reduced);
  int64_t count = 1;
  for (size_t i = 0; i < reduced.size(); ++i)
    if (reduced[i]) count *= x.shape()[i];
  // Two passes (mean, then squared deviations): exact enough for audit, no catastrophic cancellation.
  Tensor m = reduce(Reduce::Mean, x, dims, true);
  Tensor out = Tensor::empty(out_shape, x.dtype());
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>) {
      Split<T> s = split<T>(x, reduced);
      const T* base = x.data<T>();
      const T* pm = m.data<T>();
      T* po = out.data<T>();
      const int64_t nout = shape_numel(s.outer_shape);
      const double denom = double(count - correction);
#pragma omp parallel for schedule(static) if (nout > 1 && nout * count >= 32768)
      for (int64_t o = 0; o < nout; ++o) {
        int64_t off = 0, r = o;
        for (int64_t d = static_cast<int64_t>(s.outer_shape.size()) - 1; d >= 0; --d) {
          off += (r % s.outer_shape[d]) * s.outer_strides[d];
          r /= s.outer_shape[d];
        }
        const double mu = pm[o];
        double acc = 0;
        walk_inner(base + off, s.inner, 0, s.inner_numel, [&](T v) { acc += (double(v) - mu) * (double(v) - mu); });
        po[o] = denom > 0 ? T(acc / denom) : std::numeric_limits<T>::quiet_NaN();
      }
    }
  });
  return out;
}

namespace {
Tensor arg_extreme(const Tensor& x_in, int64_t dim, bool keepdim, bool is_max) {
  const char* name = is_max ? "argmax" : "argmin";
  Tensor x = x_in.plain();
  dim = normalize_dim(dim, x.dim(), name);
  DEAREST_CHECK(x.dim() == 0 || x.shape()[dim] > 0, name, ": empty dim ", dim, " in ", shape_str(x.shape()));
  std::vector<bool> reduced;
  Shape out_shape = reduced_shape(x.shape(), {dim}, keepdim, name, &reduced);
  Tensor out = Tensor::empty(out_shape, DType::I32);
  int32_t* po = out.data<int32_t>();
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    Split<T> s = split<T>(x, reduced);
    const T* base = x.data<T>();
    const int64_t nout = shape_numel(s.outer_shape);
    const int64_t n = x.dim() ? x.shape()[dim] : 1, st = x.dim() ? x.strides()[dim] : 1;
#pragma omp parallel for schedule(static) if (nout * n >= 32768)
    for (int64_t o = 0; o < nout; ++o) {
      int64_t off = 0, r = o;
      for (int64_t d = static_cast<int64_t>(s.outer_shape.size()) - 1; d >= 0; --d) {
        off += (r % s.outer_shape[d]) * s.outer_strides[d];
        r /= s.outer_shape[d];
      }
      const T* p = base + off;
      int64_t best = 0;
      T bv = p[0];
      for (int64_t i = 1; i < n; ++i) {
        T v = p[i * st];
        bool take;
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(bv)) break;
          take = std::isnan(v) || (is_max ? v > bv : v < bv);
        } else {
          take = is_max ? v > bv : v < bv;
        }
        if (take) {
          bv = v;
          best = i;
        }
      }
      po[o] = static_cast<int32_t>(best);
    }
  });
  return out;
}
}  // namespace

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return arg_extreme(x, dim, keepdim, true); }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return arg_extreme(x, dim, keepdim, false); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  DEAREST_CHECK(shape.size() <= x.shape().size(), "sum_to: cannot reduce ", shape_str(x.shape()), " to ",
                shape_str(shape));
  const size_t lead = x.shape().size() - shape.size();
  std::vector<int64_t> dims;
  for (size_t i = 0; i < x.shape().size(); ++i) {
    if (i < lead) {
      dims.push_back(static_cast<int64_t>(i));
    } else if (shape[i - lead] == 1 && x.shape()[i] != 1) {
      dims.push_back(static_cast<int64_t>(i));
    } else {
      DEAREST_CHECK(shape[i - lead] == x.shape()[i], "sum_to: cannot reduce ", shape_str(x.shape()), " to ",
                    shape_str(shape));
    }
  }
  if (dims.empty()) return x.reshape(shape);
  return reduce(Reduce::Sum, x, dims, true).reshape(shape);
}

}  // namespace dearest::raw
