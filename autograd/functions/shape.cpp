// Views and data movement: forward and backward side by side. The backward of a view writes the
// gradient into a zero tensor through the same view (slice, select) or undoes it (permute, expand).
#include "autograd/ops.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/shape_ops.h"

namespace dearest {

Tensor reshape(const Tensor& x, const Shape& shape) {
  return record("reshape", x.reshape(shape), {x}, [xs = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{g.plain().reshape(xs)};
  });
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  return record("flatten", x.flatten(start, end), {x}, [xs = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{g.plain().reshape(xs)};
  });
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  return record("slice", x.slice(dim, start, end, step), {x},
                [xs = x.shape(), dt = x.dtype(), dim, start, end, step](const Tensor& g) {
                  Tensor gx = Tensor::zeros(xs, dt);
                  gx.slice(dim, start, end, step).copy_(g);
                  return std::vector<Tensor>{gx};
                });
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  return record("select", x.select(dim, index), {x}, [xs = x.shape(), dt = x.dtype(), dim, index](const Tensor& g) {
    Tensor gx = Tensor::zeros(xs, dt);
    gx.select(dim, index).copy_(g);
    return std::vector<Tensor>{gx};
  });
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor y = x.permute(dims);
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[normalize_dim(dims[i], x.dim(), "permute")] = int64_t(i);
  return record("permute", y, {x}, [inverse](const Tensor& g) {
    return std::vector<Tensor>{g.plain().permute(inverse)};
  });
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  return record("transpose", x.transpose(d0, d1), {x}, [d0, d1](const Tensor& g) {
    return std::vector<Tensor>{g.plain().transpose(d0, d1)};
  });
}

Tensor expand(const Tensor& x, const Shape& shape) {
  return record("expand", x.expand(shape), {x}, [xs = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{raw::sum_to(g, xs)};
  });
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  return record("unsqueeze", x.unsqueeze(dim), {x}, [xs = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{g.plain().reshape(xs)};
  });
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  return record("squeeze", x.squeeze(dim), {x}, [xs = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{g.plain().reshape(xs)};
  });
}

Tensor contiguous(const Tensor& x) {
  return record("contiguous", x.contiguous(), {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  const bool differentiable = is_floating(x.dtype()) && is_floating(dtype);
  if (!differentiable) return x.detach().to(dtype);
  return record("to_dtype", x.to(dtype), {x}, [src = x.dtype()](const Tensor& g) {
    return std::vector<Tensor>{g.plain().to(src)};
  });
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  Tensor y = raw::cat(xs, dim);
  std::vector<int64_t> sizes;
  for (const Tensor& t : xs) sizes.push_back(t.size(dim));
  return record("cat", y, xs, [sizes, dim](const Tensor& g) {
    std::vector<Tensor> out;
    int64_t at = 0;
    Tensor gp = g.plain();
    for (int64_t s : sizes) {
      out.push_back(gp.slice(dim, at, at + s).contiguous());
      at += s;
    }
    return out;
  });
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  return record("pad", raw::pad(x, pads, value), {x}, [xs = x.shape(), pads](const Tensor& g) {
    Tensor gx = g.plain();
    for (size_t i = 0; i < pads.size() / 2; ++i) {
      const int64_t d = static_cast<int64_t>(xs.size()) - 1 - static_cast<int64_t>(i);
      gx = gx.slice(d, pads[2 * i], pads[2 * i] + xs[d]);
    }
    return std::vector<Tensor>{gx.contiguous()};
  });
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  return record("index_select", raw::index_select(x, dim, index), {x},
                [xs = x.shape(), dim, si = SavedTensor(index)](const Tensor& g) {
                  return std::vector<Tensor>{raw::index_add(xs, dim, si.get(), g)};
                });
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  return record("gather", raw::gather(x, dim, index), {x}, [xs = x.shape(), dim, si = SavedTensor(index)](const Tensor& g) {
    return std::vector<Tensor>{raw::scatter_add(xs, dim, si.get(), g)};
  });
}

}  // namespace dearest
