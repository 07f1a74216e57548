// Imagenette (fastai) in its standard layout: train|val/<wnid>/*.JPEG, any image size (resized by
// the transforms). Label = position of the wnid folder in sorted order.
#pragma once
#include "data/dataset.h"

namespace dearest::data {

DatasetPtr open_imagenette(const std::string& dir, const std::string& split);

}  // namespace dearest::data
