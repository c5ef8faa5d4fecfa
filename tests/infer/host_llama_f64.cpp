#include "infer/host_llama_f64.h"

#include <cmath>
#include <stdexcept>

namespace pocketlora::test {

namespace {

using Mat = std::vector<double>;  // row-major [out, in]

Mat weight(const BaseLinear& l, std::int64_t layer, LoraTarget t, const std::vector<HostLoraDelta>& deltas) {
  if (l.is_nf4()) throw std::invalid_argument("host_llama_logits_f64: the base must be plain f32");
  const std::int64_t out = l.plain.dim(0), in = l.plain.dim(1);
  Mat w(static_cast<std::size_t>(out * in));
  for (std::int64_t i = 0; i < out * in; ++i) w[static_cast<std::size_t>(i)] = l.plain.data<float>()[i];
  for (const auto& d : deltas) {
    const LoraModule* mod = d.adapter->find(layer, t);
    if (!mod) continue;
    const double s = d.scale * (d.module_scale ? d.module_scale(layer, t) : d.adapter->config.scale());
    const std::int64_t r = mod->a.dim(0);
    for (std::int64_t o = 0; o < out; ++o)
      for (std::int64_t i = 0; i < in; ++i) {
        double acc = 0;
        for (std::int64_t j = 0; j < r; ++j)
          acc += static_cast<double>(mod->b.data<float>()[o * r + j]) * mod->a.data<float>()[j * in + i];
        w[static_cast<std::size_t>(o * in + i)] += s * acc;
      }
  }
  return w;
}

std::vector<double> matvec(const Mat& w, const std::vector<double>& x) {
  const std::size_t in = x.size(), out = w.size() / in;
  std::vector<double> y(out, 0.0);
  for (std::size_t o = 0; o < out; ++o)
    for (std::size_t i = 0; i < in; ++i) y[o] += w[o * in + i] * x[i];
  return y;
}

std::vector<double> rmsnorm(const std::vector<double>& x, const Tensor& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * w.data<float>()[i];
  return y;
}

void rope(std::vector<double>& x, std::int64_t heads, std::int64_t hd, std::int64_t pos,
          const std::vector<double>& inv_freq) {
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t i = 0; i < hd / 2; ++i) {
      const double a = static_cast<double>(pos) * inv_freq[static_cast<std::size_t>(i)];
      double& x0 = x[static_cast<std::size_t>(h * hd + 2 * i)];
      double& x1 = x[static_cast<std::size_t>(h * hd + 2 * i + 1)];
      const double u = x0, v = x1;
      x0 = u * std::cos(a) - v * std::sin(a);
      x1 = u * std::sin(a) + v * std::cos(a);
    }
}

}  // namespace

std::vector<std::vector<double>> host_llama_logits_f64(const LlamaModel& m, const std::vector<std::int32_t>& tokens,
                                                       const std::vector<HostLoraDelta>& deltas) {
  if (m.rope_layout != RopeLayout::Interleaved)
    throw std::invalid_argument("host_llama_logits_f64: expects interleaved q/k rows");
  const auto& c = m.config;
  const std::int64_t T = static_cast<std::int64_t>(tokens.size()), hd = c.head_dim, H = c.n_heads,
                     KVH = c.n_kv_heads;
  const auto inv_freq = c.rope_inv_freq();
  std::vector<std::vector<double>> x(static_cast<std::size_t>(T));
  const Tensor emb = m.tok_embeddings.values(), out = m.output.values();
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t i = 0; i < c.dim; ++i)
      x[static_cast<std::size_t>(t)].push_back(emb.data<float>()[tokens[static_cast<std::size_t>(t)] * c.dim + i]);
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const auto& L = m.layers[l];
    const auto li = static_cast<std::int64_t>(l);
    const Mat wq = weight(L.wq, li, LoraTarget::Q, deltas), wk = weight(L.wk, li, LoraTarget::K, deltas),
              wv = weight(L.wv, li, LoraTarget::V, deltas), wo = weight(L.wo, li, LoraTarget::O, deltas),
              wg = weight(L.w_gate, li, LoraTarget::Gate, deltas), wu = weight(L.w_up, li, LoraTarget::Up, deltas),
              wd = weight(L.w_down, li, LoraTarget::Down, deltas);
    std::vector<std::vector<double>> q(x.size()), k(x.size()), v(x.size());
    for (std::int64_t t = 0; t < T; ++t) {
      const auto xn = rmsnorm(x[static_cast<std::size_t>(t)], L.attn_norm.values(), c.rms_eps);
      q[static_cast<std::size_t>(t)] = matvec(wq, xn);
      k[static_cast<std::size_t>(t)] = matvec(wk, xn);
      v[static_cast<std::size_t>(t)] = matvec(wv, xn);
      rope(q[static_cast<std::size_t>(t)], H, hd, t, inv_freq);
      rope(k[static_cast<std::size_t>(t)], KVH, hd, t, inv_freq);
    }
    for (std::int64_t t = 0; t < T; ++t) {
      std::vector<double> att(static_cast<std::size_t>(H * hd), 0.0);
      for (std::int64_t h = 0; h < H; ++h) {
        const std::int64_t g = h / (H / KVH);
        std::vector<double> s(static_cast<std::size_t>(t + 1));
        double mx = -INFINITY, sum = 0;
        for (std::int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (std::int64_t e = 0; e < hd; ++e)
            d += q[static_cast<std::size_t>(t)][static_cast<std::size_t>(h * hd + e)] *
                 k[static_cast<std::size_t>(j)][static_cast<std::size_t>(g * hd + e)];
          s[static_cast<std::size_t>(j)] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[static_cast<std::size_t>(j)]);
        }
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (std::int64_t j = 0; j <= t; ++j)
          for (std::int64_t e = 0; e < hd; ++e)
            att[static_cast<std::size_t>(h * hd + e)] +=
                s[static_cast<std::size_t>(j)] / sum * v[static_cast<std::size_t>(j)][static_cast<std::size_t>(g * hd + e)];
      }
      const auto o = matvec(wo, att);
      auto& xt = x[static_cast<std::size_t>(t)];
      for (std::size_t i = 0; i < xt.size(); ++i) xt[i] += o[i];
      const auto xn = rmsnorm(xt, L.ffn_norm.values(), c.rms_eps);
      const auto gate = matvec(wg, xn), up = matvec(wu, xn);
      std::vector<double> hh(gate.size());
      for (std::size_t i = 0; i < gate.size(); ++i) hh[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
      const auto d = matvec(wd, hh);
      for (std::size_t i = 0; i < xt.size(); ++i) xt[i] += d[i];
    }
  }
  Mat head(static_cast<std::size_t>(out.numel()));
  for (std::int64_t i = 0; i < out.numel(); ++i) head[static_cast<std::size_t>(i)] = out.data<float>()[i];
  std::vector<std::vector<double>> logits;
  for (const auto& xt : x) logits.push_back(matvec(head, rmsnorm(xt, m.norm.values(), c.rms_eps)));
  return logits;
}

}  // namespace pocketlora::test
