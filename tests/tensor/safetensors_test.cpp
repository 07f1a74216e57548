#include "tensor/safetensors.h"

#include <cstring>

#include "tests/test_util.h"

namespace dearest {
namespace {

std::string file_with(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string bytes_of(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

TEST(Safetensors, ReadsTensorsAndMetadata) {
  std::string data = bytes_of({1, 2, 3, 4, 5, 6});
  int64_t big = 7;
  data += std::string(reinterpret_cast<const char*>(&big), 8);
  std::string f = file_with(
      R"({"__metadata__": {"arch": "resnet18"}, "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},)"
      R"( "n": {"dtype": "I64", "shape": [1], "data_offsets": [24, 32]}})",
      data);
  SafetensorsFile s = parse_safetensors(f, "mem");
  ASSERT_TRUE(s.has("w"));
  EXPECT_EQ(s.get("w").shape(), Shape({2, 3}));
  EXPECT_EQ(s.get("w").at({1, 2}), 6);
  EXPECT_EQ(s.get("n").dtype(), DType::I32);
  EXPECT_EQ(s.get("n").item(), 7);
  ASSERT_EQ(s.metadata.size(), 1u);
  EXPECT_EQ(s.metadata[0].second, "resnet18");
  EXPECT_ERROR_CONTAINS(s.get("nope"), "mem", "nope");
}

TEST(Safetensors, RejectsCorruptFiles) {
  EXPECT_ERROR_CONTAINS(parse_safetensors("abc", "f.st"), "f.st", "truncated");
  EXPECT_ERROR_CONTAINS(parse_safetensors(file_with("{", ""), "f.st"), "f.st", "invalid JSON");
  std::string big_len(8, '\xff');
  EXPECT_ERROR_CONTAINS(parse_safetensors(big_len, "f.st"), "header length");
  EXPECT_ERROR_CONTAINS(
      parse_safetensors(file_with(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", "12345678"),
                        "f.st"),
      "\"w\"", "outside");
  EXPECT_ERROR_CONTAINS(
      parse_safetensors(file_with(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", "12345678"),
                        "f.st"),
      "\"w\"", "does not match");
  EXPECT_ERROR_CONTAINS(
      parse_safetensors(file_with(R"({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}})", "12345678"),
                        "f.st"),
      "unsupported dtype C64");
  EXPECT_ERROR_CONTAINS(read_safetensors("/nonexistent/x.safetensors"), "/nonexistent/x.safetensors", "cannot open");
}

}  // namespace
}  // namespace dearest
