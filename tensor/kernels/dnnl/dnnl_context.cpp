#include "tensor/kernels/dnnl/dnnl_context.h"

#include <mutex>
#include <set>
#include <sstream>

#include "tensor/kernels/dnnl/dnnl_info.h"

namespace dearest {

namespace dnnlk {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

dt to_dnnl(DType t) {
  switch (t) {
    case DType::F32: return dt::f32;
    case DType::I32: return dt::s32;
    case DType::I8: return dt::s8;
    case DType::U8: return dt::u8;
    default: fail("oneDNN: dtype ", dtype_name(t), " is not supported by oneDNN kernels");
  }
}

dnnl::memory::dims to_dims(const Shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }

dnnl::memory::desc plain_desc(const Shape& shape, DType dtype) {
  Shape st = contiguous_strides(shape);
  return dnnl::memory::desc(to_dims(shape), to_dnnl(dtype), dnnl::memory::dims(st.begin(), st.end()));
}

dnnl::memory::desc desc_of(const Tensor& t) {
  if (t.is_blocked()) return t.blocked_layout()->md;
  return dnnl::memory::desc(to_dims(t.shape()), to_dnnl(t.dtype()), to_dims(t.strides()));
}

namespace {
void* bytes_of(const Tensor& t) {
  if (t.is_blocked()) return t.storage()->data();
  return t.raw_data();
}

bool is_row_major(const dnnl::memory::desc& md, const Shape& shape) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.format_kind != dnnl_blocked || d.format_desc.blocking.inner_nblks != 0 || d.offset0 != 0) return false;
  Shape st = contiguous_strides(shape);
  for (int i = 0; i < d.ndims; ++i) {
    if (d.padded_dims[i] != d.dims[i]) return false;
    if (d.dims[i] != 1 && d.format_desc.blocking.strides[i] != st[i]) return false;
  }
  return true;
}

std::shared_ptr<Storage>& arena() {
  static std::shared_ptr<Storage> a;
  return a;
}
}  // namespace

dnnl::memory memory_of(const Tensor& t) { return dnnl::memory(desc_of(t), engine(), bytes_of(t)); }
dnnl::memory memory_of(const Tensor& t, const dnnl::memory::desc& md) {
  return dnnl::memory(md, engine(), bytes_of(t));
}

Tensor make_tensor(const dnnl::memory::desc& md, const Shape& shape, DType dtype) {
  if (is_row_major(md, shape)) return Tensor::empty(shape, dtype);
  auto storage = std::make_shared<Storage>(md.get_size(), false);
  return Tensor::wrap(storage, shape, dtype, std::make_shared<DnnlLayout>(md));
}

Tensor reorder_to(const Tensor& t, const dnnl::memory::desc& want) {
  dnnl::memory::desc have = desc_of(t);
  if (have == want) return t;
  Tensor out = make_tensor(want, t.shape(), t.dtype());
  dnnl::memory src = memory_of(t), dst = memory_of(out, want);
  dnnl::reorder(src, dst).execute(stream(), src, dst);
  stream().wait();
  return out;
}

Tensor reorder_bytes(const Tensor& t, const dnnl::memory::desc& have, const dnnl::memory::desc& want,
                     const Shape& shape) {
  Tensor out = make_tensor(want, shape, t.dtype());
  dnnl::memory src = memory_of(t, have), dst = memory_of(out, want);
  dnnl::reorder(src, dst).execute(stream(), src, dst);
  stream().wait();
  return out;
}

Tensor finish(const Tensor& t) {
  if (layout_policy() == LayoutPolicy::Plain && t.is_blocked()) return blocked_to_plain(t);
  return t;
}

Tensor make_workspace(const dnnl::memory::desc& md) {
  auto storage = std::make_shared<Storage>(std::max<size_t>(md.get_size(), 1), false);
  return Tensor::wrap(storage, {static_cast<int64_t>(md.get_size())}, DType::U8, std::make_shared<DnnlLayout>(md));
}

dnnl::memory scratchpad_for(const dnnl::memory::desc& md) {
  auto& a = arena();
  if (!a || a->nbytes() < md.get_size()) a = std::make_shared<Storage>(md.get_size(), false);
  return dnnl::memory(md, engine(), a->data());
}

dnnl::primitive_attr default_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args) {
  p.execute(stream(), args);
  stream().wait();
}

std::string key_of(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  std::ostringstream os;
  os << d.data_type << ':' << d.format_kind << ':';
  for (int i = 0; i < d.ndims; ++i) os << d.dims[i] << '/' << d.padded_dims[i] << '/' << d.format_desc.blocking.strides[i] << ',';
  os << 'b';
  for (int i = 0; i < d.format_desc.blocking.inner_nblks; ++i)
    os << d.format_desc.blocking.inner_blks[i] << d.format_desc.blocking.inner_idxs[i] << '.';
  os << 'o' << d.offset0 << 'e' << d.extra.flags;
  return os.str();
}

std::string describe(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  std::ostringstream os;
  os << shape_str(Shape(d.dims, d.dims + d.ndims));
  const auto& b = d.format_desc.blocking;
  if (b.inner_nblks == 0) return os.str() + " plain";
  os << " blocked ";
  for (int i = 0; i < b.inner_nblks; ++i) os << b.inner_blks[i] << char('a' + b.inner_idxs[i]);
  return os.str();
}

namespace {
std::set<std::string>& impl_log() {
  static std::set<std::string> s;
  return s;
}
}  // namespace

void note_impl(const std::string& what, const char* impl) { impl_log().insert(what + ": " + impl); }
std::vector<std::string> impls_seen() { return {impl_log().begin(), impl_log().end()}; }

}  // namespace dnnlk

std::vector<std::string> kernel_implementations() { return dnnlk::impls_seen(); }

Tensor blocked_to_plain(const Tensor& t) {
  if (!t.is_blocked()) return t;
  return dnnlk::reorder_to(t, dnnlk::plain_desc(t.shape(), t.dtype()));
}

Tensor to_layout_of(const Tensor& t, const Tensor& like) {
  DEAREST_CHECK(t.shape() == like.shape() && t.dtype() == like.dtype(), "to_layout_of: ", t.describe(), " cannot take the layout of ",
                like.describe());
  if (!like.is_blocked()) {
    DEAREST_CHECK(like.is_contiguous(), "to_layout_of: the plain layout to copy must be contiguous, got ", like.describe());
    return t.plain().contiguous();
  }
  return dnnlk::reorder_to(t.is_blocked() ? t : t.contiguous(), like.blocked_layout()->md);
}

ChannelBlocks channel_blocks(const Tensor& t) {
  ChannelBlocks r;
  if (t.dim() < 2) return r;
  const int64_t N = t.size(0), C = t.size(1);
  int64_t S = 1;
  for (int64_t i = 2; i < t.dim(); ++i) S *= t.size(i);
  if (!t.is_blocked()) {
    if (!t.is_contiguous()) return r;
    return {1, C * S, S, C};
  }
  const dnnl_memory_desc_t& d = t.blocked_layout()->md.data;
  const auto& b = d.format_desc.blocking;
  if (d.format_kind != dnnl_blocked || d.ndims != t.dim() || d.offset0 != 0 || d.padded_dims[0] != N) return r;
  int64_t B = 0;
  if (b.inner_nblks == 0) B = b.strides[1] == 1 ? C : 1;  // channels last, or channels outer to the rest
  else if (b.inner_nblks == 1 && b.inner_idxs[0] == 1) B = b.inner_blks[0];
  else return r;
  // The dims after the channels: dense, in order, each step `B` floats times the later dims.
  int64_t inner = B;
  for (int i = d.ndims - 1; i >= 2; --i) {
    if (d.padded_dims[i] != d.dims[i] || (d.dims[i] != 1 && b.strides[i] != inner)) return r;
    inner *= d.dims[i];
  }
  const int64_t Cp = d.padded_dims[1];
  if (Cp % B != 0) return r;
  const int64_t blocks = Cp / B;
  const int64_t block_stride = blocks > 1 ? b.strides[1] : inner;
  if (block_stride < inner || (N > 1 && b.strides[0] < blocks * block_stride)) return r;  // blocks must not overlap
  return {B, b.strides[0], block_stride, Cp};
}

float* layout_floats(const Tensor& t) {
  DEAREST_CHECK(t.dtype() == DType::F32, "layout_floats: an f32 tensor, got ", t.describe());
  return t.is_blocked() ? static_cast<float*>(t.storage()->data()) : t.data<float>();
}

std::string dnnl_version_string() {
  const dnnl_version_t* v = dnnl_version();
  std::ostringstream os;
  os << v->major << '.' << v->minor << '.' << v->patch;
  return os.str();
}

namespace {
const std::pair<const char*, dnnl::cpu_isa> kIsas[] = {
    {"sse41", dnnl::cpu_isa::sse41},
    {"avx", dnnl::cpu_isa::avx},
    {"avx2", dnnl::cpu_isa::avx2},
    {"avx2_vnni", dnnl::cpu_isa::avx2_vnni},
    {"avx512_core", dnnl::cpu_isa::avx512_core},
    {"avx512_core_vnni", dnnl::cpu_isa::avx512_core_vnni},
    {"avx512_core_bf16", dnnl::cpu_isa::avx512_core_bf16},
    {"avx512_core_amx", dnnl::cpu_isa::avx512_core_amx},
    {"all", dnnl::cpu_isa::all}};
}  // namespace

void set_max_isa(const std::string& isa) {
  std::string known;
  for (const auto& [name, v] : kIsas) {
    known += std::string(known.empty() ? "" : ", ") + name;
    if (isa != name) continue;
    try {
      dnnl::set_max_cpu_isa(v);
    } catch (const dnnl::error& e) {
      fail("set_max_isa: oneDNN refused \"", isa, "\" (it must be set before the first op): ", e.what());
    }
    return;
  }
  fail("set_max_isa: unknown ISA \"", isa, "\" (", known, ")");
}

std::string dnnl_isa_string() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  for (const auto& [name, v] : kIsas)
    if (v == isa) return name;
  return "other";
}

}  // namespace dearest
