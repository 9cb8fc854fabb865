#pragma once
// The admin HTTP server (SPEC.md "Admin HTTP API"): /healthz, /readyz, /metrics, /v1/status and
// POST endpoints that need `Authorization: Bearer TOKEN`. Runs its own threads (cpp-httplib);
// handlers are called from those threads and must be thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mqdr/config.hpp"

namespace mqdr {

// A Prometheus metric family built from live snapshots at scrape time.
struct MetricSample {
  std::map<std::string, std::string> labels;
  double value = 0;
};
struct MetricFamily {
  enum class Type { counter, gauge };
  std::string name;
  std::string help;
  Type type = Type::gauge;
  std::vector<MetricSample> samples;
};
// Prometheus text exposition format 0.0.4 (rendered with prometheus-cpp).
std::string render_prometheus(const std::vector<MetricFamily>& families);

struct HttpAnswer {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
};

class AdminServer {
 public:
  struct Handlers {
    std::function<bool()> ready;                 // /readyz: 200 when true, else 503
    std::function<nlohmann::json()> status;      // /v1/status
    std::function<std::vector<MetricFamily>()> metrics;  // /metrics
  };
  // captures: regex groups of the path; query: URL query parameters; body: request JSON (or null).
  using PostHandler = std::function<HttpAnswer(const std::vector<std::string>& captures,
                                               const std::map<std::string, std::string>& query,
                                               const nlohmann::json& body)>;

  AdminServer(const AdminConfig& config, Handlers handlers);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Registers a POST route (ECMAScript regex on the path); call before start(). Every POST is
  // refused with 401 unless it carries the configured bearer token (compared in constant time);
  // with no token configured every POST is refused with 403.
  void add_post(const std::string& path_regex, PostHandler handler);

  // Binds daemon.admin.listen (port 0 = any free port) and serves on a background thread.
  // Throws std::runtime_error naming the address when it cannot bind.
  void start();
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Constant-time comparison of a presented token with the expected one.
bool token_matches(const std::string& presented, const std::string& expected);

}  // namespace mqdr
