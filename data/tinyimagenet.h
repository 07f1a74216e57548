// Tiny-ImageNet-200 in its standard layout: wnids.txt, train/<wnid>/images/*.JPEG,
// val/images/*.JPEG with val/val_annotations.txt. JPEGs are decoded on access (grayscale -> RGB).
#pragma once
#include "data/dataset.h"

namespace dearest::data {

// Class order: "sorted" (the wnids sorted by name: label order of the reference code, EFRAP's
// sorted os.scandir and torchvision's ImageFolder) or "file" (line order of wnids.txt).
// split: "train" (any subset of the class folders and files present) or "val".
DatasetPtr open_tiny_imagenet(const std::string& dir, const std::string& split,
                              const std::string& class_order = "sorted");

}  // namespace dearest::data
