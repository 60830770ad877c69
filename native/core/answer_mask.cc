// The constrained-answer mask (see sampler.h).
#include "sampler.h"

#include <cstring>

namespace rrec {

int constrainedMask(const TokenBytes& tb, int V, const std::vector<std::string>& targets, const std::string& prefix,
                    std::vector<uint8_t>& allowed) {
  allowed.assign(static_cast<size_t>(V), 0);
  // the targets still reachable from `prefix`, and the bytes that may come next (a trie level)
  std::vector<const std::string*> live;
  bool next[256] = {};
  for (const std::string& t : targets)
    if (t.size() > prefix.size() && t.compare(0, prefix.size(), prefix) == 0) {
      live.push_back(&t);
      next[static_cast<uint8_t>(t[prefix.size()])] = true;
    }
  int count = 0;
  const int nTok = std::min(V, static_cast<int>(tb.offsets.size()) - 1);
  for (int v = 0; v < nTok; v++) {
    const int32_t a = tb.offsets[v], b = tb.offsets[v + 1];
    if (b <= a || !next[tb.bytes[a]]) continue;
    const size_t len = static_cast<size_t>(b - a);
    for (const std::string* t : live)
      if (prefix.size() + len <= t->size() && std::memcmp(t->data() + prefix.size(), &tb.bytes[a], len) == 0) {
        allowed[v] = 1;
        count++;
        break;
      }
  }
  return count;
}

}  // namespace rrec
