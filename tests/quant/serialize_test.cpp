// Quantized-model files: written and read back, the model gives bitwise-identical logits, for
// static, dynamic and masked-rounding quantizers; foreign files are refused.
#include "quant/serialize.h"

#include <filesystem>

#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/checkpoint.h"
#include "tests/test_util.h"

namespace dearest::quant {
namespace {

std::string tmp(const std::string& n) {
  return (std::filesystem::temp_directory_path() / ("dearest_q_" + n + "_" + std::to_string(::getpid()))).string();
}

TEST(QuantizedFile, RoundTripGivesIdenticalLogits) {
  nn::ModelSpec spec = nn::ModelSpec::parse("resnet18:width=8");
  nn::set_init_seed(3);  // the same weights whatever ran before in this process
  nn::ModulePtr m = nn::build_model(spec);
  m->eval();
  std::vector<Tensor> calib{test::randn({8, 3, 32, 32}, 1), test::randn({8, 3, 32, 32}, 2)};
  Tensor x = test::randn({4, 3, 32, 32}, 3);
  for (std::string p : {"mqbench", "tflite-int8", "qu-anti-zation", "pytorch-fbgemm", "pq-emulation-tf"}) {
    QuantizedModel q(spec, *m, preset(p, p.rfind("pq-", 0) == 0 ? 8 : 4));
    q.calibrate(calib);
    if (p == "mqbench") {  // a learned-rounding mask on one layer travels too
      QuantLayer& l = q.layer("layer2.0.conv1");
      QuantScheme s = l.weight->scheme();
      s.rounding = Rounding::Mask;
      s.form = ScaleForm::Divide;
      l.weight->set_scheme(s);
      l.weight->up_mask = gt(test::randn(l.float_weight().shape(), 9), 0.0);
    }
    const std::string path = tmp(p);
    save_quantized(path, q, {{"note", "test"}});
    EXPECT_TRUE(is_quantized_file(path));
    LoadedQuantized back = load_quantized(path);
    EXPECT_EQ(back.meta["note"], "test");
    NoGradGuard ng;
    EXPECT_TRUE(test::bitwise_equal(q(x).plain(), (*back.model)(x).plain())) << p;
    EXPECT_EQ(config_to_json(back.model->config()).dump(), config_to_json(q.config()).dump());
    std::filesystem::remove(path);
  }
  const std::string plain = tmp("float");
  nn::save_model(plain, *m, spec);
  EXPECT_FALSE(is_quantized_file(plain));
  EXPECT_ERROR_CONTAINS(load_quantized(plain), "not a quantized model");
  std::filesystem::remove(plain);
}

}  // namespace
}  // namespace dearest::quant
