#include "rabbitmq/management.hpp"

#include <httplib.h>

#include <fmt/format.h>

namespace mqdr::rabbitmq {

Management::Management(ClusterConfig cluster, Duration timeout)
    : cluster_(std::move(cluster)), timeout_(timeout) {}

Management::~Management() = default;

std::string Management::enc(std::string_view segment) {
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

httplib::Client& Management::client() {
  if (!client_) {
    std::string uri = cluster_.rabbitmq.management_uri;
    while (!uri.empty() && uri.back() == '/') uri.pop_back();
    client_ = std::make_unique<httplib::Client>(uri);
    client_->set_basic_auth(cluster_.rabbitmq.user, cluster_.rabbitmq.password.reveal());
    const auto s = static_cast<time_t>(timeout_.count() / 1000);
    const auto us = static_cast<time_t>((timeout_.count() % 1000) * 1000);
    client_->set_connection_timeout(s, us);
    client_->set_read_timeout(s, us);
    client_->set_write_timeout(s, us);
    client_->set_keep_alive(true);
    if (cluster_.tls.enabled) {
      if (!cluster_.tls.ca_file.empty()) client_->set_ca_cert_path(cluster_.tls.ca_file.c_str());
      client_->enable_server_certificate_verification(cluster_.tls.verify);
    }
  }
  return *client_;
}

Status Management::result(const char* method, const std::string& path, int status,
                          const std::string& body, bool transport_ok,
                          const std::string& transport_error) {
  last_status_ = status;
  if (!transport_ok) {
    client_.reset();  // reconnect next time
    return Status::retry(fmt::format("cluster '{}': management API {} {} unreachable ({} error)",
                                     cluster_.name, method, path, transport_error));
  }
  if (status >= 200 && status < 300) return Status::ok();
  std::string reason = body.size() > 300 ? body.substr(0, 300) : body;
  if (status == 401) reason = "unauthorized: check the user name and password";
  return Status::retry(fmt::format("cluster '{}': management API {} {}: HTTP {} {}", cluster_.name,
                                   method, path, status, reason));
}

Status Management::get(const std::string& path, nlohmann::json& out) {
  auto res = client().Get(path.c_str());
  if (!res) return result("GET", path, 0, "", false, httplib::to_string(res.error()));
  Status st = result("GET", path, res->status, res->body, true, "");
  if (!st.is_ok()) return st;
  out = nlohmann::json::parse(res->body, nullptr, false);
  if (out.is_discarded()) {
    return Status::retry(fmt::format("cluster '{}': management API GET {}: invalid JSON",
                                     cluster_.name, path));
  }
  return st;
}

Status Management::put(const std::string& path, const nlohmann::json& body) {
  auto res = client().Put(path.c_str(), body.dump(), "application/json");
  if (!res) return result("PUT", path, 0, "", false, httplib::to_string(res.error()));
  return result("PUT", path, res->status, res->body, true, "");
}

Status Management::post(const std::string& path, const nlohmann::json& body) {
  auto res = client().Post(path.c_str(), body.dump(), "application/json");
  if (!res) return result("POST", path, 0, "", false, httplib::to_string(res.error()));
  return result("POST", path, res->status, res->body, true, "");
}

Status Management::del(const std::string& path) {
  auto res = client().Delete(path.c_str());
  if (!res) return result("DELETE", path, 0, "", false, httplib::to_string(res.error()));
  return result("DELETE", path, res->status, res->body, true, "");
}

}  // namespace mqdr::rabbitmq
