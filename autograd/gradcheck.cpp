#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/rng.h"

namespace dearest {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  for (const Tensor& t : inputs)
    if (t.defined())
      DEAREST_CHECK(t.dtype() == DType::F64 && t.is_leaf() && t.is_contiguous(),
                    "gradcheck: inputs must be contiguous f64 leaves, got ", t.describe());
  GradcheckResult res;
  // Analytic: backward of <y, r>.
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = f(inputs);
  }
  DEAREST_CHECK(y0.dtype() == DType::F64, "gradcheck: the function must return f64, got ", y0.describe());
  Rng rng(opt.seed, 0);
  Tensor r = rng.uniform(y0.shape(), -1, 1, DType::F64);
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) t.set_grad(Tensor());
  Tensor y = f(inputs);
  backward(y, r);

  auto project = [&](const std::vector<Tensor>& in) {
    NoGradGuard ng;
    Tensor v = f(in).plain();
    return raw::sum(raw::binary(raw::Binary::Mul, v, r)).item();
  };
  std::ostringstream rep;
  int failures = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& t = inputs[k];
    if (!t.defined() || !t.requires_grad()) continue;
    Tensor analytic = t.grad().defined() ? t.grad().contiguous() : Tensor::zeros(t.shape(), DType::F64);
    const double* ga = analytic.data<double>();
    double* x = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double orig = x[i];
      x[i] = orig + opt.eps;
      t.bump_version();
      const double fp = project(inputs);
      x[i] = orig - opt.eps;
      t.bump_version();
      const double fm = project(inputs);
      x[i] = orig;
      t.bump_version();
      const double numeric = (fp - fm) / (2 * opt.eps);
      const double err = std::fabs(ga[i] - numeric);
      res.max_abs_err = std::max(res.max_abs_err, err);
      if (err > opt.atol + opt.rtol * std::fabs(numeric)) {
        res.ok = false;
        if (failures++ < 5)
          rep << "input " << k << " " << t.describe() << " element " << i << ": analytic " << ga[i] << ", numeric "
              << numeric << "\n";
      }
    }
  }
  if (failures > 5) rep << "... " << failures << " mismatches in all\n";
  res.report = rep.str();
  return res;
}

}  // namespace dearest
