// The LM head's row kernels as portable loops (lm_head_fused.cc): written for GCC to vectorise
// (fast_exp.h's expVec and tanhT, kLanes independent partial sums). No include guard: the .cc
// includes it twice, inside namespaces of their own, once for the build's -march and once under
// `#pragma GCC target("avx2,fma")` with fp-contract off (the second level of its dispatch).
// Needs TileStats and kLanes from the includer.

inline float capOf(float z, float cap) { return cap * tanhT(z / cap); }

// One row of a tile: soft-cap in place, then its (max, sum exp, sum exp * (z - max)).
TileStats consumeRow(float* z, int n, float cap) {
  if (cap > 0)
    for (int v = 0; v < n; v++) z[v] = capOf(z[v], cap);
  float mx[kLanes];
  for (int l = 0; l < kLanes; l++) mx[l] = -INFINITY;
  const int nv = n / kLanes * kLanes;
  for (int v = 0; v < nv; v += kLanes)
    for (int l = 0; l < kLanes; l++) mx[l] = z[v + l] > mx[l] ? z[v + l] : mx[l];
  for (int v = nv; v < n; v++) mx[v - nv] = z[v] > mx[v - nv] ? z[v] : mx[v - nv];
  float m = mx[0];
  for (int l = 1; l < kLanes; l++) m = mx[l] > m ? mx[l] : m;
  float s[kLanes] = {}, q[kLanes] = {};
  for (int v = 0; v < nv; v += kLanes)
    for (int l = 0; l < kLanes; l++) {
      const float d = z[v + l] - m, e = expVec(d);
      s[l] += e;
      q[l] += e * d;
    }
  for (int v = nv; v < n; v++) {
    const float d = z[v] - m, e = expVec(d);
    s[v - nv] += e;
    q[v - nv] += e * d;
  }
  TileStats t{m, 0, 0};
  for (int l = 0; l < kLanes; l++) {
    t.s += s[l];
    t.q += q[l];
  }
  return t;
}

// dz over one row of a tile, in place over its raw logits: g (1[v = tgt] - p) cap'(z), where
// p = exp(zc - lse) is taken as exp(zc - lf) * corr, lf = float(lse), corr = exp(lf - lse).
void dlogitsRow(float* z, int n, int tgt, float g, float lf, float corr, float cap) {
  const float rawT = tgt >= 0 ? z[tgt] : 0.f;
  if (cap > 0) {
    for (int v = 0; v < n; v++) {
      const float t = tanhT(z[v] / cap);
      z[v] = -g * (expVec(cap * t - lf) * corr) * (1.f - t * t);
    }
  } else {
    for (int v = 0; v < n; v++) z[v] = -g * (expVec(z[v] - lf) * corr);
  }
  if (tgt >= 0) {
    float zc = rawT, dcap = 1.f;
    if (cap > 0) {
      const float t = tanhT(rawT / cap);
      zc = cap * t;
      dcap = 1.f - t * t;
    }
    z[tgt] = g * (1.f - expVec(zc - lf) * corr) * dcap;
  }
}

