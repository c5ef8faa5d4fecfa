// Visibility of key j to query i: causal, and within one document of a packed window when segment ids are
// bound. Includer declares `seg` (int[]) and the push block `p`.
bool visible(uint i, uint j) {
  return j <= i && (p.has_segments == 0u || seg[i] == seg[j]);
}
