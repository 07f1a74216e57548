// Tensor: a shared handle to (storage, offset, shape, strides, dtype), plus the autograd fields.
//
// Copies of a Tensor share one TensorImpl (as torch.Tensor does): setting a gradient through one
// handle is seen through all. Views (reshape, slice, permute, expand, ...) make a new TensorImpl
// over the same Storage. Methods on Tensor never record autograd history; the differentiable
// versions of every op are the free functions in autograd/ops.h.
//
// Layout: a tensor is either plain (strided, what users see and what every reference kernel
// reads) or blocked (a oneDNN layout such as nChw8c, produced and consumed inside chains of oneDNN
// ops so that activations are not reordered between every conv, batch-norm and ReLU). A blocked
// tensor has a logical NCHW shape but its bytes are opaque: plain() reorders it.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace dearest {

class DnnlLayout;  // defined in tensor/kernels/dnnl; opaque everywhere else
struct Node;       // defined in autograd/
struct AutogradMeta;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements; meaningless for blocked tensors
  DType dtype = DType::F32;
  std::shared_ptr<const DnnlLayout> blocked;  // null: plain
  std::shared_ptr<AutogradMeta> autograd;     // null: no autograd state
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation -------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);  // uninitialised
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32);
  static Tensor scalar(double value, DType dtype = DType::F32);  // 0-d
  static Tensor arange(double start, double end, double step = 1, DType dtype = DType::F32);
  // Copies `numel(shape)` elements of `dtype` from `data`.
  static Tensor from_blob(const void* data, const Shape& shape, DType dtype);
  template <typename T> static Tensor from_vector(const std::vector<T>& v, const Shape& shape) {
    DEAREST_CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape), "from_vector: ", v.size(),
                  " values for shape ", shape_str(shape));
    return from_blob(v.data(), shape, dtype_of<T>::value);
  }
  // Wraps existing storage (used by kernels that produce blocked layouts).
  static Tensor wrap(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype,
                     std::shared_ptr<const DnnlLayout> blocked = nullptr);

  // ---- metadata -------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  int64_t offset() const { return impl().offset; }
  size_t nbytes() const { return numel() * dtype_size(dtype()); }
  bool is_contiguous() const;
  bool is_blocked() const { return impl().blocked != nullptr; }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  const std::shared_ptr<const DnnlLayout>& blocked_layout() const { return impl().blocked; }
  TensorImpl* unsafe_impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- element access (plain tensors only) ----------------------------------------------------
  template <typename T> T* data() const {
    check_access(dtype_of<T>::value);
    return static_cast<T*>(impl().storage->data()) + impl().offset;
  }
  void* raw_data() const;  // plain tensors only; at offset
  double item() const;                          // numel must be 1
  double at(const std::vector<int64_t>& index) const;  // slow; for tests and printing
  std::vector<double> to_vector() const;        // all elements in row-major order, as double

  // ---- views (share storage; a blocked tensor is made plain first) ----------------------------
  Tensor view(const Shape& shape) const;        // must be viewable without a copy
  Tensor reshape(const Shape& shape) const;     // view when possible, else a copy; one -1 allowed
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const { return slice(dim, start, start + length); }
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor expand(const Shape& shape) const;      // -1 keeps a dim
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;

  // ---- copies ---------------------------------------------------------------------------------
  Tensor contiguous() const;  // plain, row-major; returns *this when already so
  Tensor plain() const;       // reorders a blocked tensor; returns *this when plain
  Tensor clone() const;       // always a fresh plain contiguous copy
  Tensor to(DType dtype) const;  // float->int truncates toward zero and saturates; NaN -> 0

  // ---- in-place (bump the storage version) ----------------------------------------------------
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0); }
  Tensor& copy_(const Tensor& src);  // same shape (src may broadcast), converts dtype
  void bump_version() const { impl().storage->bump_version(); }
  uint64_t version() const { return impl().storage->version(); }

  // ---- autograd state (the graph itself lives in autograd/) -----------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);  // leaves only
  Tensor grad() const;                        // undefined when none yet
  void set_grad(const Tensor& g) const;
  std::shared_ptr<Node> grad_fn() const;
  bool is_leaf() const { return grad_fn() == nullptr; }
  Tensor detach() const;  // same storage, no history
  AutogradMeta& autograd_meta() const;  // created on first use

  // ---- printing -------------------------------------------------------------------------------
  std::string to_string(int64_t max_per_dim = 6) const;
  std::string describe() const;  // "f32[2, 3]" (+ "blocked")

 private:
  const TensorImpl& impl() const {
    DEAREST_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
    return *impl_;
  }
  TensorImpl& impl() {
    DEAREST_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
    return *impl_;
  }
  void check_access(DType want) const;
  std::shared_ptr<TensorImpl> impl_;
};

struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
  std::weak_ptr<Node> grad_accumulator;  // leaves: reused so all uses of a leaf share one sink
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Reorders a blocked tensor to plain NCHW; implemented by the oneDNN backend.
Tensor blocked_to_plain(const Tensor& t);
// `t` with its bytes laid out as `like`'s (the same logical shape): `t` itself when they already
// are, else a reorder. Lets a loop over a oneDNN op's blocked output read a second tensor in the
// same byte order.
Tensor to_layout_of(const Tensor& t, const Tensor& like);

// Where a tensor's channels (dim 1) sit in its bytes, when they form [N][C/B][S][B] with S the
// product of the dims after the channels: element (n, c, s) is at
//   n * n_stride + (c / block) * block_stride + s * block + c % block.
// Plain contiguous tensors have block 1, NHWC has block C, oneDNN's nChw8c/nChw16c 8/16.
// `channels` counts the padded channels (oneDNN pads C up to a multiple of the block; the padding
// holds no element). block = 0: the bytes have another layout.
struct ChannelBlocks {
  int64_t block = 0, n_stride = 0, block_stride = 0, channels = 0;
  bool operator==(const ChannelBlocks& o) const {
    return block == o.block && n_stride == o.n_stride && block_stride == o.block_stride && channels == o.channels;
  }
};
ChannelBlocks channel_blocks(const Tensor& t);
// The first float of `t`'s bytes in whatever layout they are (blocked or plain), for loops that
// address them through channel_blocks.
float* layout_floats(const Tensor& t);

}  // namespace dearest
