#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <stdexcept>
#include <thread>

#include "mqdr/admin.hpp"

namespace mqdr {

bool token_matches(const std::string& presented, const std::string& expected) {
  if (expected.empty()) return false;
  // Compare digests so the time taken does not depend on where (or whether) lengths differ.
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

struct AdminServer::Impl {
  AdminConfig config;
  Handlers handlers;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  int port = 0;
  std::vector<std::pair<std::string, PostHandler>> posts;
};

namespace {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

std::pair<std::string, int> split_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("admin listen address needs host:port");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, std::stoi(listen.substr(colon + 1))};
}

}  // namespace

AdminServer::AdminServer(const AdminConfig& config, Handlers handlers)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->handlers = std::move(handlers);
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::add_post(const std::string& path_regex, PostHandler handler) {
  impl_->posts.emplace_back(path_regex, std::move(handler));
}

int AdminServer::port() const { return impl_->port; }

void AdminServer::start() {
  auto& im = *impl_;
  // `tls.enabled: false` keeps the section but serves plain HTTP (the config loader warns).
  // No client certificates are asked for: POSTs are authenticated by the bearer token, and
  // tls.ca_file is what mqdr's CLI trusts when it calls this listener (src/cli/status.cpp).
  if (im.config.tls.enabled) {
    const auto& tls = im.config.tls;
    im.server = std::make_unique<httplib::SSLServer>(
        tls.cert_file.c_str(), tls.key_file.c_str(), nullptr, nullptr,
        tls.key_password.empty() ? nullptr : tls.key_password.reveal().c_str());
    if (!im.server->is_valid()) {
      throw std::runtime_error("admin TLS: cannot load certificate " + im.config.tls.cert_file +
                               " / key " + im.config.tls.key_file);
    }
  } else {
    im.server = std::make_unique<httplib::Server>();
  }
  auto& srv = *im.server;
  // cpp-httplib sets SO_REUSEPORT by default, which would let a second daemon share the admin
  // port silently; keep only SO_REUSEADDR so a taken port is an error.
  srv.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  srv.set_keep_alive_max_count(10);
  srv.set_read_timeout(5, 0);
  srv.set_write_timeout(5, 0);
  srv.set_payload_max_length(1 << 20);

  srv.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  srv.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = impl_->handlers.ready && impl_->handlers.ready();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
  });
  srv.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::vector<MetricFamily> families;
    if (impl_->handlers.metrics) families = impl_->handlers.metrics();
    res.set_content(render_prometheus(families), "text/plain; version=0.0.4; charset=utf-8");
  });
  srv.Get("/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, impl_->handlers.status ? impl_->handlers.status() : nlohmann::json{});
  });
  for (auto& [pattern, handler] : im.posts) {
    srv.Post(pattern, [this, h = handler](const httplib::Request& req, httplib::Response& res) {
      const auto auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      if (impl_->config.token.empty()) {
        send_json(res, 403, {{"error", "no admin token configured (daemon.admin.token_file)"}});
        return;
      }
      if (auth.rfind(prefix, 0) != 0 ||
          !token_matches(auth.substr(prefix.size()), impl_->config.token.reveal())) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_json(res, 401, {{"error", "missing or wrong bearer token"}});
        return;
      }
      std::vector<std::string> captures;
      for (std::size_t i = 1; i < req.matches.size(); ++i) captures.push_back(req.matches[i]);
      std::map<std::string, std::string> query;
      for (const auto& [k, v] : req.params) query[k] = v;
      nlohmann::json body = nullptr;
      if (!req.body.empty()) {
        body = nlohmann::json::parse(req.body, nullptr, false);
        if (body.is_discarded()) {
          send_json(res, 400, {{"error", "request body is not JSON"}});
          return;
        }
      }
      HttpAnswer answer = h(captures, query, body);
      send_json(res, answer.status, answer.body);
    });
  }
  srv.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                               std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("admin: {} {} failed: {}", req.method, req.path, what);
    send_json(res, 500, {{"error", what}});
  });

  auto [host, port] = split_listen(im.config.listen);
  if (port == 0) {
    im.port = srv.bind_to_any_port(host.c_str());
    if (im.port < 0) throw std::runtime_error("admin: cannot listen on " + im.config.listen);
  } else {
    if (!srv.bind_to_port(host.c_str(), port)) {
      throw std::runtime_error("admin: cannot listen on " + im.config.listen +
                               " (address in use or not available)");
    }
    im.port = port;
  }
  im.thread = std::thread([&srv] { srv.listen_after_bind(); });
  // httplib ignores a stop() that comes before its loop runs; return only once it runs, so
  // stop() always takes effect.
  for (int i = 0; i < 5000 && !srv.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void AdminServer::stop() {
  if (!impl_ || !impl_->server) return;
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->server.reset();
}

}  // namespace mqdr
