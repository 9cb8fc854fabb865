#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string_view>

#include "mqdr/daemon.hpp"

namespace mqdr {

namespace {

// One JSON object per line: time, level, msg, and the instance fields (mirror, cluster, group,
// plan, worker) lifted from the message's leading `key=value` words, so log shippers can filter
// by instance without parsing text.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::json line;
    const auto t = std::chrono::system_clock::to_time_t(msg.time);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char full[48];
    std::snprintf(full, sizeof full, "%s.%03dZ", buf, static_cast<int>(ms));
    line["time"] = full;
    const auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string(level.data(), level.size());
    std::string_view text(msg.payload.data(), msg.payload.size());
    // Lift leading key=value words.
    static constexpr std::string_view kFields[] = {"mirror", "cluster", "group", "plan", "worker"};
    while (true) {
      auto eq = text.find('=');
      auto sp = text.find(' ');
      if (eq == std::string_view::npos || (sp != std::string_view::npos && sp < eq)) break;
      std::string_view key = text.substr(0, eq);
      bool known = false;
      for (auto f : kFields) known = known || f == key;
      if (!known) break;
      std::string_view value = text.substr(eq + 1, sp == std::string_view::npos ? text.npos
                                                                                 : sp - eq - 1);
      line[std::string(key)] = std::string(value);
      text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
    }
    line["msg"] = std::string(text);
    auto out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(out.data(), out.data() + out.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void setup_logging(const std::string& level, bool json) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (json) {
    sink->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc));
  }
  auto logger = std::make_shared<spdlog::logger>("mqdr", sink);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace mqdr
