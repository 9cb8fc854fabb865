#include "kafka/offset_map.hpp"

#include <algorithm>
#include <charconv>

namespace mqdr::kafka {

void PartitionMap::drop_from_src(std::int64_t src) {
  while (!runs_.empty() && runs_.back().src >= src) {
    remove(runs_.back().src);
    runs_.pop_back();
  }
  if (!runs_.empty() && runs_.back().src + runs_.back().len > src) {
    runs_.back().len = src - runs_.back().src;
    touch(runs_.back().src);
  }
}

void PartitionMap::drop_from_tgt(std::int64_t tgt) {
  while (!runs_.empty() && runs_.back().tgt >= tgt) {
    remove(runs_.back().src);
    runs_.pop_back();
  }
  if (!runs_.empty() && runs_.back().tgt + runs_.back().len > tgt) {
    runs_.back().len = tgt - runs_.back().tgt;
    touch(runs_.back().src);
  }
}

void PartitionMap::add(std::int64_t src, std::int64_t tgt) {
  if (!runs_.empty() && src < src_end()) drop_from_src(src);
  if (!runs_.empty() && tgt < tgt_end()) drop_from_tgt(tgt);
  if (!runs_.empty()) {
    Run& last = runs_.back();
    if (last.src + last.len == src && last.tgt + last.len == tgt) {
      ++last.len;
      touch(last.src);
      return;
    }
  }
  runs_.push_back(Run{src, tgt, 1});
  touch(src);
}

void PartitionMap::put(std::int64_t src_start, const std::optional<Run>& run) {
  auto it = std::lower_bound(runs_.begin(), runs_.end(), src_start,
                             [](const Run& r, std::int64_t s) { return r.src < s; });
  if (!run) {
    if (it != runs_.end() && it->src == src_start) runs_.erase(it);
    return;
  }
  if (it != runs_.end() && it->src == src_start) {
    *it = *run;
  } else {
    runs_.insert(it, *run);
  }
}

std::optional<std::int64_t> PartitionMap::to_target(std::int64_t c) const {
  if (runs_.empty()) return std::nullopt;
  // First run that ends after c.
  auto it = std::upper_bound(runs_.begin(), runs_.end(), c,
                             [](std::int64_t v, const Run& r) { return v < r.src + r.len; });
  if (it == runs_.end()) return tgt_end();
  if (it->src <= c) return it->tgt + (c - it->src);
  return it->tgt;
}

std::optional<std::int64_t> PartitionMap::to_source(std::int64_t c) const {
  if (runs_.empty()) return std::nullopt;
  auto it = std::upper_bound(runs_.begin(), runs_.end(), c,
                             [](std::int64_t v, const Run& r) { return v < r.tgt + r.len; });
  if (it == runs_.end()) return src_end();
  if (it->tgt <= c) return it->src + (c - it->tgt);
  return it->src;
}

std::vector<std::pair<std::int64_t, std::optional<Run>>> PartitionMap::take_changes() {
  std::vector<std::pair<std::int64_t, std::optional<Run>>> out;
  out.reserve(changed_.size());
  for (const auto& [src, present] : changed_) {
    std::optional<Run> run;
    // A key removed and then started again in the same window is present.
    auto it = std::lower_bound(runs_.begin(), runs_.end(), src,
                               [](const Run& r, std::int64_t s) { return r.src < s; });
    if (it != runs_.end() && it->src == src) run = *it;
    (void)present;
    out.emplace_back(src, run);
  }
  changed_.clear();
  return out;
}

std::optional<std::int64_t> translate_back(const PartitionMap* forward, const PartitionMap* own,
                                           std::int64_t committed) {
  if (forward != nullptr && !forward->empty() && committed < forward->tgt_end()) {
    return forward->to_source(committed);
  }
  if (own != nullptr && !own->empty()) return own->to_target(committed);
  if (forward != nullptr && !forward->empty()) return forward->src_end();
  return std::nullopt;
}

namespace {
bool parse_i64(std::string_view s, std::int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

std::string OffsetMap::encode_key(const std::string& topic, std::int32_t p, std::int64_t src) {
  return topic + "|" + std::to_string(p) + "|" + std::to_string(src);
}

std::string OffsetMap::encode_value(const Run& run) {
  return std::to_string(run.tgt) + " " + std::to_string(run.len);
}

bool OffsetMap::apply(const std::string& key, const std::optional<std::string>& value) {
  auto b = key.rfind('|');
  if (b == std::string::npos || b == 0) return false;
  auto a = key.rfind('|', b - 1);
  if (a == std::string::npos) return false;
  std::int64_t part = 0, src = 0;
  if (!parse_i64(std::string_view(key).substr(a + 1, b - a - 1), part) ||
      !parse_i64(std::string_view(key).substr(b + 1), src) || part < 0 || src < 0) {
    return false;
  }
  std::string topic = key.substr(0, a);
  auto& pm = parts_[{topic, static_cast<std::int32_t>(part)}];
  if (!value) {
    pm.put(src, std::nullopt);
    return true;
  }
  auto sp = value->find(' ');
  if (sp == std::string::npos) return false;
  Run run;
  run.src = src;
  if (!parse_i64(std::string_view(*value).substr(0, sp), run.tgt) ||
      !parse_i64(std::string_view(*value).substr(sp + 1), run.len) || run.len < 0) {
    return false;
  }
  if (run.len == 0) {
    pm.put(src, std::nullopt);
  } else {
    pm.put(src, run);
  }
  return true;
}

}  // namespace mqdr::kafka
