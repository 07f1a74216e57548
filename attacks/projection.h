// PQBackdoor's stage-2 projection (ALGORITHMS.md §2.1): after every optimizer step each conv/linear
// weight is put back into the int8 rounding bin its stage-1 value W0 had, on every grid the
// victim may use, and the weights that set a scale (|W0| = max) are pinned, so every scale and
// every integer weight stay those of W0. Everything else (biases, BN affine) is reset to W0.
// With q0 = W0/s0 on a grid of scale s0 = max|W0|/levels, the bin is
// [round(q0) - 0.5 + m, round(q0) + 0.5 - m] * s0, inside [-max|W0|, max|W0|]. The reference
// clips into each grid's bin in turn; here the bins of all grids are intersected, so the result
// is in every one of them (the reference's second clip can leave the first bin).
#pragma once
#include <string>
#include <vector>

#include "nn/module.h"

namespace dearest::attacks {

struct BinGrid {
  enum class Applies { All, Conv, Linear } applies = Applies::All;
  bool per_channel = true;  // per output channel (conv) or row (linear); else per tensor
  double levels = 127.5;    // s = max|W| / levels (torch's symmetric qint8: 127.5; TFLite: 127)
};
// "all:channel:127.5,all:tensor:127.5" (PQBackdoor's PyTorch variant) or
// "conv:channel:127,linear:tensor:127" (its TF variant).
std::vector<BinGrid> parse_bin_grids(const std::string& text);

class BinProjection {
 public:
  // Records W0 (the model's current weights) as the anchor.
  BinProjection(nn::Module& model, std::vector<BinGrid> grids, double margin = 1e-3);
  void apply();
  // Elements outside their bins now (0 right after apply()).
  int64_t violations() const;
  const std::vector<std::string>& weight_names() const { return names_; }

 private:
  struct Entry {
    Tensor param, anchor;  // the live parameter and its stage-1 value
    bool projected = false;
    Tensor lo, hi;         // f32 bounds per element (projected weights only)
  };
  std::vector<Entry> entries_;
  std::vector<std::string> names_;
};

}  // namespace dearest::attacks
