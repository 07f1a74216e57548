// ResNet-18 (BasicBlock, [2, 2, 2, 2]) with the CIFAR or the ImageNet stem.
#include "nn/init.h"
#include "nn/layers.h"
#include "nn/models.h"

namespace dearest::nn {

namespace {

class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride) : Module("BasicBlock") {
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, out, 3, stride, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(out, out, 3, 1, 1, false));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out));
    if (stride != 1 || in != out) {
      auto ds = std::make_shared<Sequential>();
      ds->push_back(std::make_shared<Conv2d>(in, out, 1, stride, 0, false));
      ds->push_back(std::make_shared<BatchNorm2d>(out));
      downsample_ = register_module("downsample", ds);
    }
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = bn1_->has_forward_hooks() || bn1_->has_output_transform() ? relu((*bn1_)((*conv1_)(x))) : bn1_->run((*conv1_)(x), true);
    h = (*bn2_)((*conv2_)(h));
    return relu(add(h, downsample_ ? (*downsample_)(x) : x));
  }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Sequential> downsample_;
};

class ResNet18 : public Module {
 public:
  explicit ResNet18(const ModelSpec& s) : Module("ResNet18") {
    const int64_t w = s.get("width", 64), classes = s.get("classes", 10), input = s.get("input", 32);
    const std::string stem = s.get("stem", "cifar");
    DEAREST_CHECK(stem == "cifar" || stem == "imagenet", "resnet18: stem must be cifar or imagenet, got ", stem);
    DEAREST_CHECK(w >= 1 && classes >= 1 && input >= 8, "resnet18: invalid width ", w, ", classes ", classes,
                  " or input ", input);
    imagenet_ = stem == "imagenet";
    pool_ = s.get("pool", imagenet_ ? "adaptive" : "avg4");
    DEAREST_CHECK(pool_ == "avg4" || pool_ == "adaptive", "resnet18: pool must be avg4 or adaptive, got ", pool_);
    conv1_ = register_module("conv1", imagenet_ ? std::make_shared<Conv2d>(3, w, 7, 2, 3, false)
                                                : std::make_shared<Conv2d>(3, w, 3, 1, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(w));
    if (imagenet_) maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
    int64_t in = w;
    const int64_t widths[] = {w, 2 * w, 4 * w, 8 * w};
    for (int l = 0; l < 4; ++l) {
      auto layer = std::make_shared<Sequential>();
      layer->push_back(std::make_shared<BasicBlock>(in, widths[l], l == 0 ? 1 : 2));
      layer->push_back(std::make_shared<BasicBlock>(widths[l], widths[l], 1));
      layers_[l] = register_module("layer" + std::to_string(l + 1), layer);
      in = widths[l];
    }
    const std::string prune = s.get("prune", "");
    if (!prune.empty()) {
      DEAREST_CHECK(prune.size() == 6 && prune.compare(0, 5, "layer") == 0 && prune[5] >= '1' && prune[5] <= '4',
                    "resnet18: prune must be layer1..layer4, got ", prune);
      prune_after_ = prune[5] - '1';
      prune_ = register_module("prune", std::make_shared<ChannelMask>(widths[prune_after_]));
    }
    // Features into the head: avg_pool2d(4) leaves (input/32)^2 positions with the CIFAR stem.
    int64_t feat = 8 * w;
    if (pool_ == "avg4") {
      const int64_t side = (imagenet_ ? input / 32 : input / 8) / 4;
      DEAREST_CHECK(side >= 1, "resnet18: input ", input, " too small for pool=avg4");
      feat *= side * side;
    }
    fc_ = register_module("fc", std::make_shared<Linear>(feat, classes, true));
    for (auto& [n, m] : named_modules())
      if (m->type() == "Conv2d") kaiming_normal_fan_out(static_cast<Conv2d*>(m)->weight());
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = bn1_->has_forward_hooks() || bn1_->has_output_transform() ? relu((*bn1_)((*conv1_)(x))) : bn1_->run((*conv1_)(x), true);
    if (maxpool_) h = (*maxpool_)(h);
    for (int l = 0; l < 4; ++l) {
      h = (*layers_[l])(h);
      if (l == prune_after_) h = (*prune_)(h);
    }
    if (pool_ == "avg4") {
      Pool2dParams p;
      p.kernel_h = p.kernel_w = p.stride_h = p.stride_w = 4;
      h = avg_pool2d(h, p);
    } else {
      h = adaptive_avg_pool2d(h, 1, 1);
    }
    return (*fc_)(flatten(h, 1));
  }

 private:
  bool imagenet_;
  std::string pool_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<MaxPool2d> maxpool_;
  std::shared_ptr<Sequential> layers_[4];
  int prune_after_ = -1;
  std::shared_ptr<ChannelMask> prune_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace

ModulePtr build_resnet18(const ModelSpec& s) { return std::make_shared<ResNet18>(s); }

}  // namespace dearest::nn
