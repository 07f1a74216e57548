// VGG16 (configuration D) with or without batch norm, and the heads of the code bases.
#include <cmath>

#include "nn/init.h"
#include "nn/layers.h"
#include "nn/models.h"

namespace dearest::nn {

namespace {

class Vgg16 : public Module {
 public:
  explicit Vgg16(const ModelSpec& s) : Module("VGG16") {
    const int64_t w = s.get("width", 64), classes = s.get("classes", 10), input = s.get("input", 32);
    const bool bn = s.get("bn", 1) != 0, conv_bias = s.get("conv_bias", 1) != 0, fc_bias = s.get("fc_bias", 1) != 0;
    const std::string act = s.get("act", "relu"), head = s.get("head", "linear");
    DEAREST_CHECK(act == "relu" || act == "relu6", "vgg16: act must be relu or relu6, got ", act);
    DEAREST_CHECK(head == "linear" || head == "mlp", "vgg16: head must be linear or mlp, got ", head);
    DEAREST_CHECK(w >= 1 && classes >= 1 && input >= 32 && input % 32 == 0, "vgg16: invalid width ", w, ", classes ",
                  classes, " or input ", input, " (a multiple of 32)");
    const int64_t cfg[] = {1, 1, 0, 2, 2, 0, 4, 4, 4, 0, 8, 8, 8, 0, 8, 8, 8, 0};  // x width; 0 = max-pool
    auto features = std::make_shared<Sequential>();
    int64_t in = 3;
    for (int64_t c : cfg) {
      if (c == 0) {
        features->push_back(std::make_shared<MaxPool2d>(2, 2));
        continue;
      }
      auto conv = std::make_shared<Conv2d>(in, c * w, 3, 1, 1, conv_bias);
      kaiming_normal_fan_out(conv->weight());
      if (conv_bias) {
        Tensor b = conv->named_parameters()[1].second;
        b.zero_();
      }
      features->push_back(conv);
      if (bn) features->push_back(std::make_shared<BatchNorm2d>(c * w));
      if (act == "relu") features->push_back(std::make_shared<ReLU>());
      else features->push_back(std::make_shared<ReLU6>());
      in = c * w;
    }
    features_ = register_module("features", features);
    const std::string prune = s.get("prune", "");
    if (!prune.empty()) {
      DEAREST_CHECK(prune == "features", "vgg16: prune must be features, got ", prune);
      prune_ = register_module("prune", std::make_shared<ChannelMask>(in));
    }
    const int64_t side = input / 32, feat = 8 * w * side * side;
    if (head == "linear") {
      classifier_ = register_module("classifier", std::make_shared<Linear>(feat, classes, fc_bias));
    } else {
      auto mlp = std::make_shared<Sequential>();
      mlp->push_back(std::make_shared<Dropout>(0.5));
      mlp->push_back(std::make_shared<Linear>(feat, 8 * w));
      mlp->push_back(std::make_shared<ReLU>());
      mlp->push_back(std::make_shared<Dropout>(0.5));
      mlp->push_back(std::make_shared<Linear>(8 * w, 8 * w));
      mlp->push_back(std::make_shared<ReLU>());
      mlp->push_back(std::make_shared<Linear>(8 * w, classes, fc_bias));
      classifier_ = register_module("classifier", mlp);
    }
    // torchvision: Linear weights N(0, 0.01), biases 0.
    for (auto& [n, m] : classifier_->named_modules())
      if (m->type() == "Linear")
        for (auto& [pn, t] : m->named_parameters()) {
          Tensor h = t;
          if (pn == "weight") h.copy_(init_rng().normal(h.shape(), 0, 0.01));
          else h.zero_();
        }
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*features_)(x);
    if (prune_) h = (*prune_)(h);
    return (*classifier_)(flatten(h, 1));
  }

 private:
  std::shared_ptr<Sequential> features_;
  std::shared_ptr<ChannelMask> prune_;
  ModulePtr classifier_;
};

}  // namespace

ModulePtr build_vgg16(const ModelSpec& s) { return std::make_shared<Vgg16>(s); }

}  // namespace dearest::nn
