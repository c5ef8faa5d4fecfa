// u[r,c] = g[r,c] / sqrt(R[r] / mean(R) * C[c]) — transformers' _approx_sq_grad:
// (R / mean(R)).rsqrt()[:, None] * C.rsqrt()[None, :] * g.
float adafactor_u(uint r, uint c, float row_mean, float cs) {
  return grad[r * p.cols + c] * cs * inversesqrt(row_stat[r] / row_mean) * inversesqrt(col_stat[c]);
}
