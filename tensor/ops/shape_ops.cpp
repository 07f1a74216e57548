#include "tensor/ops/shape_ops.h"

#include "tensor/strided_loop.h"

namespace dearest::raw {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  DEAREST_CHECK(!xs.empty(), "cat: no tensors given");
  const Tensor& f = xs[0];
  dim = normalize_dim(dim, f.dim(), "cat");
  Shape out_shape = f.shape();
  out_shape[dim] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    DEAREST_CHECK(t.dtype() == f.dtype(), "cat: tensor ", i, " is ", t.describe(), ", tensor 0 is ", f.describe());
    DEAREST_CHECK(t.dim() == f.dim(), "cat: tensor ", i, " has shape ", shape_str(t.shape()), ", tensor 0 has ",
                  shape_str(f.shape()));
    for (int64_t d = 0; d < f.dim(); ++d)
      DEAREST_CHECK(d == dim || t.size(d) == f.size(d), "cat: tensor ", i, " has shape ", shape_str(t.shape()),
                    ", tensor 0 has ", shape_str(f.shape()), " (they may differ only in dim ", dim, ")");
    out_shape[dim] += t.size(dim);
  }
  Tensor out = Tensor::empty(out_shape, f.dtype());
  int64_t at = 0;
  for (const Tensor& t : xs) {
    out.slice(dim, at, at + t.size(dim)).copy_(t);
    at += t.size(dim);
  }
  return out;
}

Tensor pad(const Tensor& x_in, const std::vector<int64_t>& pads, double value) {
  Tensor x = x_in.plain();
  DEAREST_CHECK(pads.size() % 2 == 0 && static_cast<int64_t>(pads.size()) / 2 <= x.dim(), "pad: ", pads.size(),
                " pad values for a ", x.dim(), "-d tensor (need pairs, at most 2 per dim)");
  Shape out_shape = x.shape();
  std::vector<int64_t> lo(x.dim(), 0);
  for (size_t i = 0; i < pads.size() / 2; ++i) {
    const int64_t d = x.dim() - 1 - static_cast<int64_t>(i);
    DEAREST_CHECK(pads[2 * i] >= 0 && pads[2 * i + 1] >= 0, "pad: negative padding is not supported (use slice)");
    lo[d] = pads[2 * i];
    out_shape[d] += pads[2 * i] + pads[2 * i + 1];
  }
  Tensor out = Tensor::full(out_shape, value, x.dtype());
  Tensor inner = out;
  for (int64_t d = 0; d < x.dim(); ++d) inner = inner.slice(d, lo[d], lo[d] + x.size(d));
  inner.copy_(x);
  return out;
}

namespace {
void check_index(const Tensor& index, const char* op) {
  DEAREST_CHECK(index.dtype() == DType::I32, op, ": index must be i32, got ", index.describe());
}
}  // namespace

Tensor index_select(const Tensor& x_in, int64_t dim, const Tensor& index_in) {
  Tensor x = x_in.plain();
  check_index(index_in, "index_select");
  DEAREST_CHECK(index_in.dim() == 1, "index_select: index must be 1-d, got ", shape_str(index_in.shape()));
  dim = normalize_dim(dim, x.dim(), "index_select");
  Tensor index = index_in.contiguous();
  const int32_t* ip = index.data<int32_t>();
  const int64_t n = x.size(dim);
  Shape out_shape = x.shape();
  out_shape[dim] = index.numel();
  Tensor out = Tensor::empty(out_shape, x.dtype());
  for (int64_t i = 0; i < index.numel(); ++i) {
    DEAREST_CHECK(ip[i] >= 0 && ip[i] < n, "index_select: index ", ip[i], " at position ", i,
                  " out of range for dim ", dim, " of shape ", shape_str(x.shape()));
    out.select(dim, i).copy_(x.select(dim, ip[i]));
  }
  return out;
}

Tensor index_add(const Shape& shape, int64_t dim, const Tensor& index_in, const Tensor& src_in) {
  check_index(index_in, "index_add");
  Tensor src = src_in.plain();
  dim = normalize_dim(dim, static_cast<int64_t>(shape.size()), "index_add");
  Tensor index = index_in.contiguous();
  const int32_t* ip = index.data<int32_t>();
  Tensor out = Tensor::zeros(shape, src.dtype());
  DEAREST_CHECK(src.size(dim) == index.numel(), "index_add: source ", shape_str(src.shape()), " has ", src.size(dim),
                " entries in dim ", dim, " for ", index.numel(), " indices");
  for (int64_t i = 0; i < index.numel(); ++i) {  // in index order: repeated indices add deterministically
    DEAREST_CHECK(ip[i] >= 0 && ip[i] < shape[dim], "index_add: index ", ip[i], " out of range for dim ", dim,
                  " of shape ", shape_str(shape));
    Tensor dst = out.select(dim, ip[i]);
    Tensor s = src.select(dim, i);
    dispatch_dtype(src.dtype(), [&](auto z) {
      using T = decltype(z);
      T* pd = dst.data<T>();
      const T* ps = s.data<T>();
      strided_loop<2>(dst.shape(), {dst.strides(), s.strides()}, [&](const auto& off, int64_t n, const auto& st) {
        for (int64_t j = 0; j < n; ++j) pd[off[0] + j * st[0]] += ps[off[1] + j * st[1]];
      }, false);
    });
  }
  return out;
}

namespace {
// Visits every element of `index` with its full coordinate; f(coord, linear offset in index).
template <typename F> void for_each_coord(const Shape& shape, F&& f) {
  std::vector<int64_t> c(shape.size(), 0);
  const int64_t n = shape_numel(shape);
  for (int64_t i = 0; i < n; ++i) {
    f(c, i);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      if (++c[d] < shape[d]) break;
      c[d] = 0;
    }
  }
}

void check_gather_shapes(const Shape& data, const Tensor& index, int64_t dim, const char* op) {
  check_index(index, op);
  DEAREST_CHECK(index.dim() == static_cast<int64_t>(data.size()), op, ": index ", shape_str(index.shape()),
                " must have the rank of ", shape_str(data));
  for (int64_t d = 0; d < index.dim(); ++d)
    DEAREST_CHECK(d == dim || index.size(d) <= data[d], op, ": index ", shape_str(index.shape()),
                  " larger than ", shape_str(data), " in dim ", d);
}
}  // namespace

Tensor gather(const Tensor& x_in, int64_t dim, const Tensor& index_in) {
  Tensor x = x_in.plain();
  dim = normalize_dim(dim, x.dim(), "gather");
  check_gather_shapes(x.shape(), index_in, dim, "gather");
  Tensor index = index_in.contiguous();
  Tensor out = Tensor::empty(index.shape(), x.dtype());
  const int32_t* ip = index.data<int32_t>();
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_each_coord(index.shape(), [&](const std::vector<int64_t>& c, int64_t i) {
      const int32_t k = ip[i];
      DEAREST_CHECK(k >= 0 && k < x.size(dim), "gather: index ", k, " out of range for dim ", dim, " of shape ",
                    shape_str(x.shape()));
      int64_t off = 0;
      for (int64_t d = 0; d < x.dim(); ++d) off += (d == dim ? k : c[d]) * x.strides()[d];
      po[i] = px[off];
    });
  });
  return out;
}

Tensor scatter_add(const Shape& shape, int64_t dim, const Tensor& index_in, const Tensor& src_in) {
  dim = normalize_dim(dim, static_cast<int64_t>(shape.size()), "scatter_add");
  check_gather_shapes(shape, index_in, dim, "scatter_add");
  Tensor index = index_in.contiguous(), src = src_in.contiguous();
  DEAREST_CHECK(src.shape() == index.shape(), "scatter_add: source ", shape_str(src.shape()), " differs from index ",
                shape_str(index.shape()));
  Tensor out = Tensor::zeros(shape, src.dtype());
  const int32_t* ip = index.data<int32_t>();
  Shape st = out.strides();
  dispatch_dtype(src.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* ps = src.data<T>();
    T* po = out.data<T>();
    for_each_coord(index.shape(), [&](const std::vector<int64_t>& c, int64_t i) {
      const int32_t k = ip[i];
      DEAREST_CHECK(k >= 0 && k < shape[dim], "scatter_add: index ", k, " out of range for dim ", dim, " of shape ",
                    shape_str(shape));
      int64_t off = 0;
      for (size_t d = 0; d < shape.size(); ++d) off += (static_cast<int64_t>(d) == dim ? k : c[d]) * st[d];
      po[off] += ps[i];
    });
  });
  return out;
}

}  // namespace dearest::raw
