#pragma once
// A client of the running daemon's admin API, for CLI commands (status, failover, failback).

#include <string>

#include <nlohmann/json.hpp>

#include "mqdr/config.hpp"

namespace mqdr {

struct AdminReply {
  bool reached = false;  // false: could not connect (error says why)
  int status = 0;
  nlohmann::json body;
  std::string error;
};

// method is "GET" or "POST"; POSTs carry the configured bearer token.
AdminReply admin_request(const Config& config, const std::string& method, const std::string& path,
                         const nlohmann::json& body = nullptr);

}  // namespace mqdr
