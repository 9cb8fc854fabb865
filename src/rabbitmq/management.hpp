#pragma once
// Minimal client of the RabbitMQ management HTTP API (cpp-httplib), authenticated with the
// cluster's AMQP user. Used by one thread at a time. Errors name the cluster and the request,
// never the password.

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mqdr/config.hpp"
#include "mqdr/status.hpp"

namespace httplib {
class Client;
}

namespace mqdr::rabbitmq {

class Management {
 public:
  Management(ClusterConfig cluster, Duration timeout);
  ~Management();

  bool configured() const { return !cluster_.rabbitmq.management_uri.empty(); }
  const ClusterConfig& cluster() const { return cluster_; }

  Status get(const std::string& path, nlohmann::json& out);
  Status put(const std::string& path, const nlohmann::json& body);
  Status post(const std::string& path, const nlohmann::json& body);
  Status del(const std::string& path);
  int last_status() const { return last_status_; }

  // Percent-encodes one path segment ("/" -> "%2F").
  static std::string enc(std::string_view segment);
  std::string vhost() const { return enc(cluster_.rabbitmq.vhost); }

 private:
  httplib::Client& client();
  Status result(const char* method, const std::string& path, int status, const std::string& body,
                bool transport_ok, const std::string& transport_error);

  ClusterConfig cluster_;
  Duration timeout_;
  std::unique_ptr<httplib::Client> client_;
  int last_status_ = 0;
};

}  // namespace mqdr::rabbitmq
