#include "tensor/tensor.h"

#include "tests/test_util.h"

namespace dearest {
namespace {

TEST(Tensor, CreationAndMetadata) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dim(), 2);
  EXPECT_EQ(z.strides(), Shape({3, 1}));
  EXPECT_EQ(z.dtype(), DType::F32);
  EXPECT_EQ(z.at({1, 2}), 0);
  Tensor f = Tensor::full({2}, 2.5, DType::F64);
  EXPECT_EQ(f.at({1}), 2.5);
  Tensor a = Tensor::arange(0, 5);
  EXPECT_EQ(a.to_vector(), std::vector<double>({0, 1, 2, 3, 4}));
  EXPECT_EQ(Tensor::arange(1, 2, 0.25, DType::F64).numel(), 4);
  Tensor v = Tensor::from_vector<int32_t>({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(v.dtype(), DType::I32);
  EXPECT_EQ(v.at({1, 0}), 3);
  EXPECT_EQ(Tensor::scalar(3).item(), 3);
}

TEST(Tensor, StorageIsAligned) {
  for (int i = 1; i < 20; ++i) {
    Tensor t = Tensor::empty({i * 3 + 1}, DType::U8);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.storage()->data()) % 64, 0u);
  }
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::arange(0, 24).reshape({2, 3, 4});
  Tensor s = t.slice(2, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(s.shape(), Shape({2, 3, 2}));
  EXPECT_FALSE(s.is_contiguous());
  EXPECT_EQ(s.at({1, 2, 1}), 23);
  EXPECT_EQ(s.storage().get(), t.storage().get());
  Tensor p = t.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), Shape({4, 2, 3}));
  EXPECT_EQ(p.at({3, 1, 2}), t.at({1, 2, 3}));
  EXPECT_EQ(t.transpose(0, 2).at({3, 2, 1}), 23);
  EXPECT_EQ(t.select(1, 2).at({1, 0}), 20);
  Tensor e = Tensor::arange(0, 3).reshape({3, 1}).expand({3, 4});
  EXPECT_EQ(e.strides()[1], 0);
  EXPECT_EQ(e.at({2, 3}), 2);
  EXPECT_EQ(t.unsqueeze(1).shape(), Shape({2, 1, 3, 4}));
  EXPECT_EQ(t.unsqueeze(1).squeeze(1).shape(), Shape({2, 3, 4}));
  EXPECT_EQ(t.flatten(1).shape(), Shape({2, 12}));
  EXPECT_EQ(t.reshape({-1, 4}).shape(), Shape({6, 4}));
  // Writes through a view reach the base.
  s.fill_(-1);
  EXPECT_EQ(t.at({0, 0, 1}), -1);
  EXPECT_EQ(t.at({0, 0, 2}), 2);
}

TEST(Tensor, ContiguousCopiesNonContiguous) {
  Tensor t = Tensor::arange(0, 6).reshape({2, 3});
  Tensor c = t.transpose(0, 1).contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.to_vector(), std::vector<double>({0, 3, 1, 4, 2, 5}));
  EXPECT_TRUE(t.contiguous().same(t));  // already contiguous: no copy
  Tensor r = t.transpose(0, 1).reshape({6});  // needs a copy
  EXPECT_EQ(r.to_vector(), std::vector<double>({0, 3, 1, 4, 2, 5}));
}

TEST(Tensor, DtypeConversion) {
  Tensor f = Tensor::from_vector<float>({-1.7f, 2.9f, 300.f, -300.f, NAN}, {5});
  EXPECT_EQ(f.to(DType::I32).to_vector(), std::vector<double>({-1, 2, 300, -300, 0}));
  EXPECT_EQ(f.to(DType::I8).to_vector(), std::vector<double>({-1, 2, 127, -128, 0}));
  EXPECT_EQ(f.to(DType::U8).to_vector(), std::vector<double>({0, 2, 255, 0, 0}));
  Tensor d = f.to(DType::F64);
  EXPECT_EQ(d.dtype(), DType::F64);
  EXPECT_FLOAT_EQ(d.at({1}), 2.9f);
  Tensor i = Tensor::from_vector<int32_t>({-200, 5}, {2});
  EXPECT_EQ(i.to(DType::I8).to_vector(), std::vector<double>({-128, 5}));
}

TEST(Tensor, Printing) {
  Tensor t = Tensor::arange(0, 4).reshape({2, 2});
  std::string s = t.to_string();
  EXPECT_NE(s.find("[[0, 1]"), std::string::npos) << s;
  EXPECT_NE(s.find("f32[2, 2]"), std::string::npos) << s;
  EXPECT_NE(Tensor::arange(0, 100).to_string().find("..."), std::string::npos);
}

TEST(Tensor, ErrorsNameTheOpAndShapes) {
  Tensor t = Tensor::zeros({2, 3});
  EXPECT_ERROR_CONTAINS(t.view({4, 2}), "view", "[4, 2]", "6 elements");
  EXPECT_ERROR_CONTAINS(t.at({2, 0}), "at", "[2, 3]");
  EXPECT_ERROR_CONTAINS(t.select(0, 5), "select", "[2, 3]");
  EXPECT_ERROR_CONTAINS(t.permute({0, 0}), "permute");
  EXPECT_ERROR_CONTAINS(t.expand({4, 3}), "expand", "[2, 3]", "[4, 3]");
  EXPECT_ERROR_CONTAINS(t.data<double>(), "f32", "f64");
  EXPECT_ERROR_CONTAINS(t.transpose(0, 1).view({6}), "not contiguous");
  EXPECT_ERROR_CONTAINS(Tensor().shape(), "undefined");
  EXPECT_ERROR_CONTAINS(t.item(), "item", "6 elements");
}

TEST(Tensor, CopyAndFillBumpVersion) {
  Tensor t = Tensor::zeros({3});
  uint64_t v = t.version();
  t.fill_(2);
  EXPECT_GT(t.version(), v);
  v = t.version();
  t.copy_(Tensor::scalar(5));  // broadcast source
  EXPECT_GT(t.version(), v);
  EXPECT_EQ(t.to_vector(), std::vector<double>({5, 5, 5}));
}

}  // namespace
}  // namespace dearest
