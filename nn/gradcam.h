// Grad-CAM (Selvaraju et al., ICCV 2017): where a model looks when it gives a class. The class
// score's gradient at a layer's output, averaged over the positions, weights that layer's channels;
// the weighted sum through a ReLU, upsampled to the input (bilinear, half-pixel centres) and scaled
// to [0, 1] per image. Works on any Module, quantized ones included (their quantizers pass the
// gradient straight through). The EFRAP supplementary's Figure 4 shows it on triggered images.
#pragma once
#include <string>
#include <vector>

#include "nn/models.h"
#include "nn/module.h"

namespace dearest::nn {

// The layer Grad-CAM looks at by default: the last convolutional stage (ResNet: layer4; VGG: the
// last ReLU of the features).
std::string gradcam_layer(Module& model, const ModelSpec& spec);

// Heatmaps [N, H, W] in [0, 1] of x [N, C, H, W] for each image's class (classes.size() == N);
// an image whose weighted map is zero everywhere gets zeros.
Tensor grad_cam(Module& model, const std::string& layer, const Tensor& x, const std::vector<int32_t>& classes);

// The features the last linear layer reads (the penultimate representation), [N, D].
Tensor penultimate_features(Module& model, const Tensor& x);

}  // namespace dearest::nn
