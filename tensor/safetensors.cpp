#include "tensor/safetensors.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "tensor/json.h"

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
  return f;
}

}  // namespace dearest
