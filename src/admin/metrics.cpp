#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "mqdr/admin.hpp"

namespace mqdr {

std::string render_prometheus(const std::vector<MetricFamily>& families) {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families.size());
  for (const auto& f : families) {
    prometheus::MetricFamily pf;
    pf.name = f.name;
    pf.help = f.help;
    pf.type = f.type == MetricFamily::Type::counter ? prometheus::MetricType::Counter
                                                    : prometheus::MetricType::Gauge;
    for (const auto& s : f.samples) {
      prometheus::ClientMetric m;
      for (const auto& [k, v] : s.labels) m.label.push_back({k, v});
      if (f.type == MetricFamily::Type::counter) {
        m.counter.value = s.value;
      } else {
        m.gauge.value = s.value;
      }
      pf.metric.push_back(std::move(m));
    }
    out.push_back(std::move(pf));
  }
  return prometheus::TextSerializer().Serialize(out);
}

}  // namespace mqdr
