#include <httplib.h>

#include <cstdio>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "mqdr/admin_client.hpp"

namespace mqdr {

AdminReply admin_request(const Config& config, const std::string& method, const std::string& path,
                         const nlohmann::json& body) {
  AdminReply reply;
  const auto& admin = config.daemon.admin;
  std::string listen = admin.listen;
  auto colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  int port = colon == std::string::npos ? 9780 : std::stoi(listen.substr(colon + 1));
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "[::]" || host == "::") host = "::1";
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);

  std::unique_ptr<httplib::Client> client;
  if (admin.tls.enabled) {
    // The admin certificate is verified against daemon.admin.tls.ca_file (the system's CAs when
    // empty) and must name the host connected to, or tls.server_name: then that name is used
    // for SNI and the check while the connection still goes to the listen address.
    const std::string& name = admin.tls.server_name.empty() ? host : admin.tls.server_name;
    const bool v6 = name.find(':') != std::string::npos;
    client = std::make_unique<httplib::Client>("https://" + (v6 ? "[" + name + "]" : name) + ":" +
                                               std::to_string(port));
    if (name != host) client->set_hostname_addr_map({{name, host}});
    if (!admin.tls.ca_file.empty()) client->set_ca_cert_path(admin.tls.ca_file.c_str());
    client->enable_server_certificate_verification(admin.tls.verify);
  } else {
    client = std::make_unique<httplib::Client>(host, port);
  }
  client->set_connection_timeout(3, 0);
  client->set_read_timeout(120, 0);  // failover requests may take a while
  httplib::Headers headers;
  if (method == "POST" && !admin.token.empty()) {
    headers.emplace("Authorization", "Bearer " + admin.token.reveal());
  }
  httplib::Result res = method == "POST"
      ? client->Post(path.c_str(), headers, body.is_null() ? std::string() : body.dump(),
                     "application/json")
      : client->Get(path.c_str(), headers);
  if (!res) {
    if (res.error() == httplib::Error::SSLServerVerification) {
      reply.error = fmt::format(
          "the mqdr daemon at {} presented a certificate that was not accepted: set "
          "daemon.admin.tls.ca_file to the CA that signed daemon.admin.tls.cert_file (the "
          "certificate itself when it is self-signed), and make sure the certificate names {}",
          admin.listen, admin.tls.server_name.empty() ? host : admin.tls.server_name);
    } else {
      reply.error = fmt::format("cannot reach the mqdr daemon at {} ({}); is `mqdr run` running "
                                "with this config?", admin.listen, httplib::to_string(res.error()));
    }
    return reply;
  }
  reply.reached = true;
  reply.status = res->status;
  reply.body = nlohmann::json::parse(res->body, nullptr, false);
  if (reply.body.is_discarded()) reply.body = res->body;
  return reply;
}

namespace cli {

namespace {

std::string cell(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) return fmt::format("{:.1f}", v.get<double>());
  return v.dump();
}

void table(std::ostream& os, const std::vector<std::string>& head,
           const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) width[i] = head[i].size();
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], std::min<std::size_t>(r[i].size(), 60));
    }
  }
  auto line = [&](const std::vector<std::string>& r) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::string text = r[i].size() > 60 ? r[i].substr(0, 57) + "..." : r[i];
      os << text;
      if (i + 1 < r.size()) os << std::string(width[i] - text.size() + 2, ' ');
    }
    os << "\n";
  };
  line(head);
  for (const auto& r : rows) line(r);
}

}  // namespace

int print_status(const Config& config, bool json) {
  AdminReply reply = admin_request(config, "GET", "/v1/status");
  if (!reply.reached) {
    std::cerr << "mqdr status: " << reply.error << "\n";
    return 1;
  }
  if (reply.status != 200) {
    std::cerr << "mqdr status: the daemon answered " << reply.status << ": " << cell(reply.body)
              << "\n";
    return 1;
  }
  const auto& s = reply.body;
  if (json) {
    std::cout << s.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : s.value("mirrors", nlohmann::json::array())) {
    rows.push_back({cell(m["name"]), cell(m["kind"]), cell(m["state"]), cell(m["records_total"]),
                    cell(m["lag_records"]), cell(m["lag_seconds"]), cell(m["last_error"])});
  }
  table(std::cout, {"MIRROR", "KIND", "STATE", "RECORDS", "LAG", "LAG_S", "LAST_ERROR"}, rows);
  std::cout << "\n";
  rows.clear();
  for (const auto& c : s.value("clusters", nlohmann::json::array())) {
    rows.push_back({cell(c["name"]), cell(c["kind"]), cell(c["up"]),
                    cell(c.value("message", nlohmann::json(nullptr)))});
  }
  table(std::cout, {"CLUSTER", "KIND", "UP", "MESSAGE"}, rows);
  const auto groups = s.value("failover", nlohmann::json::array());
  if (!groups.empty()) {
    std::cout << "\n";
    rows.clear();
    for (const auto& g : groups) {
      rows.push_back({cell(g["group"]), cell(g["state"]), cell(g["epoch"]), cell(g["active"]),
                      cell(g.value("since", nlohmann::json(nullptr)))});
    }
    table(std::cout, {"GROUP", "STATE", "EPOCH", "ACTIVE", "SINCE"}, rows);
  }
  const auto plans = s.value("backups", nlohmann::json::array());
  if (!plans.empty()) {
    std::cout << "\n";
    rows.clear();
    auto text_or_dash = [](const nlohmann::json& v) {
      return v.is_string() && v.get<std::string>().empty() ? std::string("-") : cell(v);
    };
    for (const auto& p : plans) {
      rows.push_back({cell(p.value("plan", nlohmann::json(nullptr))),
                      cell(p.value("kind", nlohmann::json(nullptr))),
                      cell(p.value("state", nlohmann::json(nullptr))),
                      text_or_dash(p.value("last_success", nlohmann::json(nullptr))),
                      text_or_dash(p.value("next_due", nlohmann::json(nullptr))),
                      cell(p.value("retained", nlohmann::json(nullptr))),
                      text_or_dash(p.value("last_error", nlohmann::json(nullptr)))});
    }
    table(std::cout, {"PLAN", "KIND", "STATE", "LAST_SUCCESS", "NEXT_DUE", "RETAINED", "LAST_ERROR"},
          rows);
  }
  return 0;
}

}  // namespace cli
}  // namespace mqdr
