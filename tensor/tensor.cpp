#include "tensor/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <limits>
#include <ostream>
#include <sstream>

#include "tensor/strided_loop.h"

namespace dearest {

namespace {

std::shared_ptr<TensorImpl> make_impl(const Shape& shape, DType dtype, bool zero) {
  for (int64_t d : shape) DEAREST_CHECK(d >= 0, "tensor: negative size in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), zero);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return impl;
}

// Float -> integer: truncate toward zero, saturate, NaN -> 0 (defined behaviour, unlike a cast).
template <typename To, typename From> To convert(From v) {
  if constexpr (std::is_floating_point_v<To> || !std::is_floating_point_v<From>) {
    if constexpr (!std::is_floating_point_v<To> && !std::is_floating_point_v<From>) {
      using L = std::numeric_limits<To>;
      int64_t x = static_cast<int64_t>(v);
      return static_cast<To>(x < L::min() ? L::min() : (x > L::max() ? L::max() : x));
    } else {
      return static_cast<To>(v);
    }
  } else {
    using L = std::numeric_limits<To>;
    if (std::isnan(v)) return 0;
    double t = std::trunc(static_cast<double>(v));
    if (t <= static_cast<double>(L::min())) return L::min();
    if (t >= static_cast<double>(L::max())) return L::max();
    return static_cast<To>(t);
  }
}

// dst[i] = convert(src[i]) over two strided views of the same shape.
void strided_convert(const Tensor& src, const Tensor& dst) {
  dispatch_dtype(src.dtype(), [&](auto s0) {
    using S = decltype(s0);
    dispatch_dtype(dst.dtype(), [&](auto d0) {
      using D = decltype(d0);
      const S* sp = src.data<S>();
      D* dp = dst.data<D>();
      Shape sst = broadcast_strides(src.shape(), src.strides(), dst.shape(), "copy_");
      strided_loop<2>(dst.shape(), {dst.strides(), sst}, [&](const auto& off, int64_t n, const auto& st) {
        D* o = dp + off[0];
        const S* i = sp + off[1];
        for (int64_t j = 0; j < n; ++j) o[j * st[0]] = convert<D>(i[j * st[1]]);
      });
    });
  });
}

std::shared_ptr<TensorImpl> view_impl(const Tensor& t, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.storage();
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = t.dtype();
  return impl;
}

Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      DEAREST_CHECK(infer < 0, op, ": only one dim may be -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      DEAREST_CHECK(out[i] >= 0, op, ": invalid size in ", shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    DEAREST_CHECK(known > 0 && numel % known == 0, op, ": shape ", shape_str(shape), " is invalid for ", numel,
                  " elements");
    out[infer] = numel / known;
  }
  DEAREST_CHECK(shape_numel(out) == numel, op, ": shape ", shape_str(shape), " is invalid for ", numel,
                " elements");
  return out;
}

}  // namespace

// ---- creation ---------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype) { return Tensor(make_impl(shape, dtype, false)); }
Tensor Tensor::zeros(const Shape& shape, DType dtype) { return Tensor(make_impl(shape, dtype, true)); }
Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1, dtype); }
Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}
Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor Tensor::arange(double start, double end, double step, DType dtype) {
  DEAREST_CHECK(step != 0, "arange: step must be non-zero");
  double span = (end - start) / step;
  int64_t n = span > 0 ? static_cast<int64_t>(std::ceil(span)) : 0;
  Tensor t = empty({n}, dtype);
  dispatch_dtype(dtype, [&](auto z) {
    using T = decltype(z);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = convert<T>(start + i * step);
  });
  return t;
}

Tensor Tensor::from_blob(const void* data, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  if (t.nbytes()) std::memcpy(t.raw_data(), data, t.nbytes());
  return t;
}

Tensor Tensor::wrap(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype,
                    std::shared_ptr<const DnnlLayout> blocked) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->blocked = std::move(blocked);
  return Tensor(impl);
}

// ---- metadata ---------------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  if (is_blocked()) return false;
  int64_t expect = 1;
  for (size_t i = shape().size(); i-- > 0;) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expect) return false;
    expect *= shape()[i];
  }
  return true;
}

void Tensor::check_access(DType want) const {
  DEAREST_CHECK(!is_blocked(), "data: tensor ", describe(), " is in a oneDNN blocked layout; call plain() first");
  DEAREST_CHECK(dtype() == want, "data: tensor is ", dtype_name(dtype()), ", accessed as ", dtype_name(want));
}

void* Tensor::raw_data() const {
  DEAREST_CHECK(!is_blocked(), "data: tensor ", describe(), " is in a oneDNN blocked layout; call plain() first");
  return static_cast<char*>(impl().storage->data()) + impl().offset * dtype_size(dtype());
}

double Tensor::at(const std::vector<int64_t>& index) const {
  Tensor p = plain();
  DEAREST_CHECK(static_cast<int64_t>(index.size()) == p.dim(), "at: ", index.size(), " indices for a ", p.dim(),
                "-d tensor");
  int64_t off = 0;
  for (size_t i = 0; i < index.size(); ++i) {
    int64_t ix = index[i] < 0 ? index[i] + p.shape()[i] : index[i];
    DEAREST_CHECK(ix >= 0 && ix < p.shape()[i], "at: index ", index[i], " out of range for dim ", i, " of shape ",
                  shape_str(p.shape()));
    off += ix * p.strides()[i];
  }
  return dispatch_dtype(p.dtype(), [&](auto z) {
    using T = decltype(z);
    return static_cast<double>(p.data<T>()[off]);
  });
}

double Tensor::item() const {
  DEAREST_CHECK(numel() == 1, "item: tensor of shape ", shape_str(shape()), " has ", numel(), " elements, not 1");
  return at(std::vector<int64_t>(dim(), 0));
}

std::vector<double> Tensor::to_vector() const {
  Tensor c = contiguous().to(DType::F64);
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

// ---- views ------------------------------------------------------------------------------------

Tensor Tensor::view(const Shape& shape_in) const {
  Tensor src = plain();
  Shape shape = infer_shape(shape_in, src.numel(), "view");
  DEAREST_CHECK(src.is_contiguous(), "view: tensor of shape ", shape_str(src.shape()),
                " is not contiguous; use reshape (which copies)");
  return Tensor(view_impl(src, shape, contiguous_strides(shape), src.offset()));
}

Tensor Tensor::reshape(const Shape& shape) const {
  Tensor src = plain();
  return src.is_contiguous() ? src.view(shape) : src.contiguous().view(shape);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = normalize_dim(start, dim(), "flatten");
  end = normalize_dim(end, dim(), "flatten");
  DEAREST_CHECK(start <= end, "flatten: start dim ", start, " after end dim ", end);
  Shape s;
  for (int64_t i = 0; i < start; ++i) s.push_back(shape()[i]);
  int64_t m = 1;
  for (int64_t i = start; i <= end; ++i) m *= shape()[i];
  s.push_back(m);
  for (int64_t i = end + 1; i < dim(); ++i) s.push_back(shape()[i]);
  return reshape(s);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  Tensor src = plain();
  d = normalize_dim(d, src.dim(), "slice");
  DEAREST_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = src.shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = src.shape(), strides = src.strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  return Tensor(view_impl(src, shape, strides, src.offset() + start * src.strides()[d]));
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  Tensor src = plain();
  d = normalize_dim(d, src.dim(), "select");
  int64_t n = src.shape()[d];
  DEAREST_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d, " of shape ",
                shape_str(src.shape()));
  if (index < 0) index += n;
  Shape shape = src.shape(), strides = src.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return Tensor(view_impl(src, shape, strides, src.offset() + index * src.strides()[d]));
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> perm(dim());
  for (int64_t i = 0; i < dim(); ++i) perm[i] = i;
  std::swap(perm[normalize_dim(d0, dim(), "transpose")], perm[normalize_dim(d1, dim(), "transpose")]);
  return permute(perm);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  Tensor src = plain();
  DEAREST_CHECK(static_cast<int64_t>(dims.size()) == src.dim(), "permute: ", dims.size(), " dims given for shape ",
                shape_str(src.shape()));
  Shape shape(dims.size()), strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = normalize_dim(dims[i], src.dim(), "permute");
    DEAREST_CHECK(!seen[d], "permute: dim ", d, " repeated");
    seen[d] = true;
    shape[i] = src.shape()[d];
    strides[i] = src.strides()[d];
  }
  return Tensor(view_impl(src, shape, strides, src.offset()));
}

Tensor Tensor::expand(const Shape& target_in) const {
  Tensor src = plain();
  Shape target = target_in;
  size_t lead = target.size() >= src.shape().size() ? target.size() - src.shape().size() : 0;
  DEAREST_CHECK(target.size() >= src.shape().size(), "expand: cannot expand ", shape_str(src.shape()), " to ",
                shape_str(target_in));
  for (size_t i = 0; i < target.size(); ++i)
    if (target[i] == -1) {
      DEAREST_CHECK(i >= lead, "expand: -1 not allowed for a new leading dim in ", shape_str(target_in));
      target[i] = src.shape()[i - lead];
    }
  Shape strides = broadcast_strides(src.shape(), src.strides(), target, "expand");
  return Tensor(view_impl(src, target, strides, src.offset()));
}

Tensor Tensor::unsqueeze(int64_t d) const {
  Tensor src = plain();
  d = normalize_dim(d, src.dim() + 1, "unsqueeze");
  Shape shape = src.shape(), strides = src.strides();
  int64_t st = d < src.dim() ? src.strides()[d] * src.shape()[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, st);
  return Tensor(view_impl(src, shape, strides, src.offset()));
}

Tensor Tensor::squeeze(int64_t d) const {
  Tensor src = plain();
  d = normalize_dim(d, src.dim(), "squeeze");
  if (src.shape()[d] != 1) return src;
  Shape shape = src.shape(), strides = src.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return Tensor(view_impl(src, shape, strides, src.offset()));
}

// ---- copies -----------------------------------------------------------------------------------

Tensor Tensor::plain() const { return is_blocked() ? blocked_to_plain(*this) : *this; }

Tensor Tensor::contiguous() const {
  Tensor src = plain();
  return src.is_contiguous() ? src : src.clone();
}

Tensor Tensor::clone() const {
  Tensor src = plain();
  Tensor out = empty(src.shape(), src.dtype());
  strided_convert(src, out);
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor src = plain();
  Tensor out = empty(src.shape(), t);
  strided_convert(src, out);
  return out;
}

Tensor& Tensor::fill_(double value) {
  DEAREST_CHECK(!is_blocked(), "fill_: blocked tensor");
  dispatch_dtype(dtype(), [&](auto z) {
    using T = decltype(z);
    T v = convert<T>(value);
    T* p = data<T>();
    strided_loop<1>(shape(), {strides()}, [&](const auto& off, int64_t n, const auto& st) {
      for (int64_t j = 0; j < n; ++j) p[off[0] + j * st[0]] = v;
    });
  });
  bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  DEAREST_CHECK(!is_blocked(), "copy_: destination is a blocked tensor");
  Tensor s = src.plain();
  broadcast_strides(s.shape(), s.strides(), shape(), "copy_");  // validates the shapes
  strided_convert(s, *this);
  bump_version();
  return *this;
}

// ---- autograd state ---------------------------------------------------------------------------

AutogradMeta& Tensor::autograd_meta() const {
  auto& impl = const_cast<TensorImpl&>(this->impl());
  if (!impl.autograd) impl.autograd = std::make_shared<AutogradMeta>();
  return *impl.autograd;
}

bool Tensor::requires_grad() const {
  const auto& a = impl().autograd;
  return a && (a->requires_grad || a->grad_fn);
}

Tensor& Tensor::set_requires_grad(bool on) {
  DEAREST_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can be marked; this one was computed by an op");
  DEAREST_CHECK(!on || is_floating(dtype()), "set_requires_grad: only floating tensors can require grad, got ",
                dtype_name(dtype()));
  autograd_meta().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& a = impl().autograd;
  return a ? a->grad : Tensor();
}

void Tensor::set_grad(const Tensor& g) const { autograd_meta().grad = g; }

std::shared_ptr<Node> Tensor::grad_fn() const {
  const auto& a = impl().autograd;
  return a ? a->grad_fn : nullptr;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>(this->impl());
  impl->autograd.reset();
  return Tensor(impl);
}

// ---- printing ---------------------------------------------------------------------------------

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + (is_blocked() ? " blocked" : "");
}

std::string Tensor::to_string(int64_t max_per_dim) const {
  if (!defined()) return "tensor(undefined)";
  Tensor p = plain();
  std::ostringstream os;
  os << std::setprecision(6);
  std::vector<int64_t> idx(p.dim(), 0);
  // Recursive print with "..." past max_per_dim entries per dim (first and last halves shown).
  auto rec = [&](auto&& self, int64_t d) -> void {
    if (d == p.dim()) {
      os << p.at(idx);
      return;
    }
    os << '[';
    int64_t n = p.shape()[d], half = max_per_dim / 2;
    for (int64_t i = 0; i < n; ++i) {
      if (n > max_per_dim && i == half) {
        os << "..., ";
        i = n - half;
      }
      idx[d] = i;
      self(self, d + 1);
      if (i + 1 < n) os << (d + 1 == p.dim() ? ", " : ",\n" + std::string(d + 8, ' '));
    }
    os << ']';
  };
  os << "tensor(";
  rec(rec, 0);
  os << ", " << describe();
  if (requires_grad()) os << ", requires_grad";
  os << ')';
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace dearest
