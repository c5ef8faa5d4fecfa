#pragma once
// The optimizer settings the optimizer tests share (GPU vs reference and the hand-computed reference checks):
// lr 1e-2 and weight decay 0.1 for every kind, plus each kind's non-default knobs so every code path is taken.
#include "host/ref/optimizer.h"

namespace pocketlora::test {

inline OptimizerConfig test_optimizer_config(OptimizerKind k) {
  OptimizerConfig c;
  c.kind = k;
  c.lr = 1e-2f;
  c.weight_decay = 0.1f;
  if (k == OptimizerKind::Lion) c.beta2 = 0.99f;
  if (k == OptimizerKind::SGD) {
    c.beta1 = 0.9f;
    c.dampening = 0.1f;
    c.nesterov = true;
  }
  if (k == OptimizerKind::Adafactor) c.eps = 1e-30f;
  return c;
}

}  // namespace pocketlora::test
