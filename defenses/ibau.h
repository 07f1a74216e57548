// I-BAU, implicit backdoor adversarial unlearning (ALGORITHMS.md §4.5; the official I-BAU code):
//   min_theta max_delta (1/n) sum CE(f_theta(x_i + delta), y_i)
// with one universal perturbation delta [1, C, H, W]. Each round:
//  (a) delta from 0 by one pass of SGD (lr 10) over the unlearning batches on
//      mean(-CE(f(x + delta), argmax f(x))) + 0.001 |delta|^2;
//  (b) for each batch, one Adam step on theta along the implicit hypergradient of
//      L_out(delta, theta) = CE(f_theta(x + P delta), y)   (P: delta on a random 1% of the batch)
//      through the fixed point delta = Phi(delta, theta) = delta - 0.1 grad_delta L_in(delta, theta),
//      L_in = mean(-CE(f(x0 + delta), y0)) + 0.001 |delta|^2 on the first unlearning batch (x0, y0):
//        v = (dPhi/ddelta)^T v + grad_delta L_out   (K = 5 fixed-point iterations from v = 0)
//        g_theta = grad_theta L_out + (dPhi/dtheta)^T v.
// The engine has no double backward, so the two Hessian-vector products in (dPhi/d.)^T v are
// central differences of gradients along v (tests/defenses/ibau_test.cpp measures their error
// against the exact Hessian of a linear model). The model stays in eval mode (BN frozen).
#pragma once
#include <string>
#include <vector>

#include "data/registry.h"
#include "nn/models.h"
#include "nn/module.h"
#include "tensor/json.h"

namespace dearest::defenses {

struct IbauOptions {
  int64_t rounds = 3;         // the supplementary: 3 (the official default: 5)
  int64_t batch = 100;
  double inner_lr = 10;       // SGD on delta in (a)
  double reg = 0.001;         // the |delta|^2 weight of both inner losses
  double fp_lr = 0.1;         // Phi's gradient step
  int64_t K = 5;
  double tol = 1e-10;         // the fixed-point iteration stops early when v moves less
  std::string optimizer = "adam";
  double lr = 1e-4;           // the supplementary: 1e-4 for every defense (the official: 1e-3)
  double portion = 0.01;      // of each outer batch, the images that carry delta (at least one)
  double fd_eps = 1e-3;       // the difference step along v: fd_eps * max(1, |delta|) / |v|
  int64_t max_batches = 0;    // per pass (0: all)
  uint64_t seed = 0;
  bool progress = true;
  // After every round the model, the optimizer, the mask RNG and the log are saved here, and a
  // run finding the file resumes after its last round, exactly (empty: no checkpoint). A file of
  // another starting model or option set is refused.
  std::string checkpoint;
  nn::ModelSpec spec;          // recorded in the checkpoint
  int64_t stop_after = 0;      // return after this many rounds done in all (0: all of them)
};

struct IbauRound {
  double inner_loss = 0;   // mean of (a)'s objective over the pass
  double delta_norm = 0;   // |delta| after (a)
  double outer_loss = 0;   // mean L_out over (b)
  double fp_iterations = 0;  // mean fixed-point iterations per hypergradient
  double seconds = 0;
};

// A round's record as JSON (the summary's and the checkpoint's form).
Json ibau_round_json(const IbauRound& r);

// Unlearns in place, on `clean` with the test transforms (no augmentation, as the official code).
std::vector<IbauRound> ibau(nn::Module& model, const data::DatasetPtr& clean, const std::string& kind, const IbauOptions& o);

// ---- the pieces, for tests ----

// L_in(delta) = mean(-CE(f(x + delta), y)) + reg |delta|^2, its value and its gradients in delta
// and in the model's parameters (named_parameters order; zero where a parameter gets none).
double inner_gradients(nn::Module& model, const Tensor& x, const Tensor& y, const Tensor& delta, double reg,
                       Tensor* g_delta, std::vector<Tensor>* g_theta);

// H v and M v, with H = d^2 L_in / d delta^2 and M = d^2 L_in / d theta d delta, by central
// differences of inner_gradients along v.
void inner_hessian_products(nn::Module& model, const Tensor& x, const Tensor& y, const Tensor& delta, double reg,
                            const Tensor& v, double fd_eps, Tensor& hv, std::vector<Tensor>& mv);

struct Hypergradient {
  std::vector<Tensor> g_theta;
  double outer_loss = 0;
  int64_t iterations = 0;
};
// The hypergradient of L_out(delta, theta) = CE(f(x_out + mask * delta), y_out) through the
// fixed point of Phi on (x_in, y_in). `mask` is [N, 1, 1, 1]: 1 for the images that carry delta.
Hypergradient hypergradient(nn::Module& model, const Tensor& x_in, const Tensor& y_in, const Tensor& x_out,
                            const Tensor& y_out, const Tensor& mask, const Tensor& delta, const IbauOptions& o);

}  // namespace dearest::defenses
