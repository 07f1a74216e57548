#include "tensor/safetensors.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "tensor/json.h"
#include "tensor/sha256.h"

#include <algorithm>
#include <cstdio>

namespace dearest {

bool SafetensorsFile::has(const std::string& name) const {
  for (const auto& kv : tensors)
    if (kv.first == name) return true;
  return false;
}

const Tensor& SafetensorsFile::get(const std::string& name) const {
  for (const auto& kv : tensors)
    if (kv.first == name) return kv.second;
  fail(path, ": no tensor named \"", name, "\"");
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DEAREST_CHECK(in.good(), path, ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_safetensors(ss.str(), path);
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& path) {
  SafetensorsFile f;
  f.path = path;
  DEAREST_CHECK(bytes.size() >= 8, path, ": truncated safetensors file (", bytes.size(), " bytes, no header length)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  DEAREST_CHECK(n <= bytes.size() - 8, path, ": header length ", n, " exceeds the file size ", bytes.size());
  const Json header = Json::parse(bytes.substr(8, n), path + " header");
  DEAREST_CHECK(header.is_object(), path, ": header is not a JSON object");
  const size_t data_start = 8 + n, data_size = bytes.size() - data_start;
  std::vector<std::pair<int64_t, std::pair<int64_t, std::string>>> ranges;  // begin, end, name
  for (const auto& [name, entry] : header.members()) {
    if (name == "__metadata__") {
      DEAREST_CHECK(entry.is_object(), path, ": __metadata__ is not an object");
      for (const auto& [k, v] : entry.members()) {
        DEAREST_CHECK(v.is_string(), path, ": metadata \"", k, "\" is not a string");
        f.metadata.emplace_back(k, v.as_string());
      }
      continue;
    }
    auto bad = [&](const std::string& what) { fail(path, ": tensor \"", name, "\": ", what); };
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      bad("needs dtype, shape and data_offsets");
    const std::string dt = entry["dtype"].as_string();
    Shape shape;
    for (const Json& d : entry["shape"].items()) {
      if (!d.is_number() || d.as_number() < 0) bad("invalid shape");
      shape.push_back(d.as_int());
    }
    const auto& offs = entry["data_offsets"].items();
    if (offs.size() != 2) bad("data_offsets must be [begin, end]");
    const int64_t b = offs[0].as_int(), e = offs[1].as_int();
    if (b < 0 || e < b || static_cast<uint64_t>(e) > data_size)
      bad("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] outside the " +
          std::to_string(data_size) + "-byte data section");
    if (e > b) ranges.push_back({b, {e, name}});
    const char* src = bytes.data() + data_start + b;
    const int64_t numel = shape_numel(shape);
    size_t esize;
    DType out_dtype;
    if (dt == "F32") { esize = 4; out_dtype = DType::F32; }
    else if (dt == "F64") { esize = 8; out_dtype = DType::F64; }
    else if (dt == "I32") { esize = 4; out_dtype = DType::I32; }
    else if (dt == "I64") { esize = 8; out_dtype = DType::I32; }
    else if (dt == "I8") { esize = 1; out_dtype = DType::I8; }
    else if (dt == "U8" || dt == "BOOL") { esize = 1; out_dtype = DType::U8; }
    else bad("unsupported dtype " + dt + " (F32, F64, I64, I32, I8, U8, BOOL are read)");
    if (static_cast<uint64_t>(e - b) != numel * esize)
      bad("data length " + std::to_string(e - b) + " bytes does not match " + dt + shape_str(shape));
    Tensor t;
    if (dt == "I64") {
      t = Tensor::empty(shape, DType::I32);
      int32_t* p = t.data<int32_t>();
      for (int64_t i = 0; i < numel; ++i) {
        int64_t v;
        std::memcpy(&v, src + i * 8, 8);
        if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
          bad("I64 value " + std::to_string(v) + " does not fit in i32");
        p[i] = static_cast<int32_t>(v);
      }
    } else {
      t = Tensor::from_blob(src, shape, out_dtype);
    }
    f.tensors.emplace_back(name, t);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    DEAREST_CHECK(ranges[i].first >= ranges[i - 1].second.first, path, ": tensors \"", ranges[i - 1].second.second,
                  "\" and \"", ranges[i].second.second, "\" overlap in the data section");
  return f;
}

namespace {
const char* st_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I8: return "I8";
    default: return "U8";
  }
}
}  // namespace

std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::vector<std::pair<std::string, std::string>>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json m = Json::object();
    for (const auto& [k, v] : metadata) m.set(k, v);
    header.set("__metadata__", m);
  }
  std::vector<Tensor> plain;
  size_t at = 0;
  for (const auto& [name, t] : tensors) {
    DEAREST_CHECK(!header.contains(name), "write_safetensors: tensor name \"", name, "\" given twice");
    Tensor c = t.contiguous();
    Json e = Json::object();
    e.set("dtype", st_dtype(c.dtype()));
    Json shape = Json::array();
    for (int64_t d : c.shape()) shape.push(d);
    e.set("shape", shape);
    Json offs = Json::array();
    offs.push(int64_t(at));
    offs.push(int64_t(at + c.nbytes()));
    e.set("data_offsets", offs);
    header.set(name, e);
    at += c.nbytes();
    plain.push_back(c);
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h += ' ';  // the format pads the header to 8 bytes with spaces
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(h.size()) >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + at);
  for (const Tensor& c : plain) out.append(static_cast<const char*>(c.raw_data()), c.nbytes());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  const std::string bytes = safetensors_bytes(tensors, metadata);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    DEAREST_CHECK(out.good(), tmp, ": cannot open for writing");
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.flush();
    DEAREST_CHECK(out.good(), tmp, ": write failed (disk full?)");
  }
  DEAREST_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot rename ", tmp, " into place");
}

std::string fingerprint(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  Sha256 h;
  for (const auto& [name, t] : tensors) {
    Tensor c = t.contiguous();
    h.update(name.data(), name.size() + 1);
    h.update(dtype_name(c.dtype()), 3);
    for (int64_t d : c.shape()) h.update(&d, sizeof d);
    h.update(c.raw_data(), c.nbytes());
  }
  return h.hex();
}

}  // namespace dearest
