#include "rabbitmq/connection.hpp"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <fmt/format.h>

#include "mqdr/tls_errors.hpp"

namespace mqdr::rabbitmq {

namespace {

timeval to_timeval(Duration d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

std::string server_text(const amqp_rpc_reply_t& reply, int& code, bool& channel_level) {
  channel_level = false;
  switch (reply.reply.id) {
    case AMQP_CONNECTION_CLOSE_METHOD: {
      auto* m = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
      code = m->reply_code;
      return fmt::format("{} {}", m->reply_code, str_of(m->reply_text));
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
      auto* m = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
      code = m->reply_code;
      channel_level = true;
      return fmt::format("{} {}", m->reply_code, str_of(m->reply_text));
    }
    default:
      code = 0;
      return fmt::format("unexpected server method 0x{:08x}", reply.reply.id);
  }
}

// OpenSSL's own chain verification (including the name set on the context's parameters), with
// its verdict kept for the error message: rabbitmq-c only says "peer cert verification failed".
int keep_verdict(X509_STORE_CTX* store, void* arg) {
  const int ok = X509_verify_cert(store);
  if (ok != 1) *static_cast<long*>(arg) = X509_STORE_CTX_get_error(store);
  return ok;
}

}  // namespace

Connection::Connection(ClusterConfig cluster, std::string label)
    : cluster_(std::move(cluster)), label_(std::move(label)) {}

Connection::~Connection() { close(); }

std::string Connection::where() const {
  return fmt::format("cluster '{}' ({}:{}, vhost '{}')", cluster_.name, cluster_.rabbitmq.host,
                     cluster_.rabbitmq.port, cluster_.rabbitmq.vhost);
}

Status Connection::open(Duration timeout, int heartbeat_s) {
  close();
  last_code_ = 0;
  const auto& rc = cluster_.rabbitmq;
  conn_ = amqp_new_connection();
  if (conn_ == nullptr) return Status::retry("out of memory creating an AMQP connection");
  amqp_socket_t* socket = nullptr;
  if (cluster_.tls.enabled) {
    socket = amqp_ssl_socket_new(conn_);
    if (socket == nullptr) return Status::retry("cannot create a TLS socket");
    const auto& tls = cluster_.tls;
    if (!tls.ca_file.empty() && amqp_ssl_socket_set_cacert(socket, tls.ca_file.c_str()) != 0) {
      return Status::fatal(fmt::format("{}: cannot read tls.ca_file '{}'", where(), tls.ca_file));
    }
    if (!tls.cert_file.empty()) {
      if (!tls.key_password.empty()) {
        amqp_ssl_socket_set_key_passwd(socket, tls.key_password.reveal().c_str());
      }
      if (amqp_ssl_socket_set_key(socket, tls.cert_file.c_str(), tls.key_file.c_str()) != 0) {
        return Status::fatal(fmt::format("{}: cannot load tls.cert_file/key_file", where()));
      }
    }
    // The name is checked by OpenSSL during chain verification: rabbitmq-c's own check
    // (amqp_ssl_socket_set_verify_hostname) knows neither IP addresses nor tls.server_name.
    auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
    cert_error_ = X509_V_OK;
    SSL_CTX_set_cert_verify_callback(ctx, keep_verdict, &cert_error_);
    if (tls.verify && tls.verify_hostname) {
      const std::string& name = tls.server_name.empty() ? rc.host : tls.server_name;
      X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1 &&
          X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0) != 1) {
        return Status::fatal(fmt::format("{}: cannot check the server name '{}'", where(), name));
      }
    }
    amqp_ssl_socket_set_verify_peer(socket, tls.verify ? 1 : 0);
    amqp_ssl_socket_set_verify_hostname(socket, 0);
  } else {
    socket = amqp_tcp_socket_new(conn_);
    if (socket == nullptr) return Status::retry("cannot create a TCP socket");
  }
  timeval tv = to_timeval(timeout);
  int rcode = amqp_socket_open_noblock(socket, rc.host.c_str(), rc.port, &tv);
  if (rcode != AMQP_STATUS_OK) {
    std::string why = amqp_error_string2(rcode);
    if (cluster_.tls.enabled && cert_error_ != X509_V_OK) {
      const auto& tls = cluster_.tls;
      why = "TLS handshake failed: " +
            explain_certificate_error(cert_error_, X509_verify_cert_error_string(cert_error_),
                                      tls.server_name.empty() ? rc.host : tls.server_name);
    } else if (rcode == AMQP_STATUS_SSL_CONNECTION_FAILED) {
      why += " (check tls.ca_file, tls.cert_file and tls.key_file, and that the port speaks TLS)";
    }
    Status st = Status::retry(fmt::format("{}: cannot connect: {}", where(), why));
    close();
    return st;
  }
  amqp_set_handshake_timeout(conn_, &tv);
  amqp_set_rpc_timeout(conn_, &tv);

  // Name the connection so operators recognise it in the management UI.
  amqp_table_entry_t entry;
  entry.key = amqp_cstring_bytes("connection_name");
  const std::string name = "mqdr " + label_;
  entry.value.kind = AMQP_FIELD_KIND_UTF8;
  entry.value.value.bytes = bytes_of(name);
  amqp_table_t props{1, &entry};
  amqp_rpc_reply_t reply = amqp_login_with_properties(
      conn_, rc.vhost.c_str(), 0, 131072, heartbeat_s, &props, AMQP_SASL_METHOD_PLAIN,
      rc.user.c_str(), rc.password.reveal().c_str());
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    Status st;
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_CONNECTION_CLOSED) {
      // RabbitMQ closes the socket without a reason on a failed PLAIN authentication; over TLS
      // 1.3 a refused client certificate also shows only here.
      last_code_ = kAccessRefused;
      st = Status::retry(fmt::format(
          "{}: login refused for user '{}': check the user name and password{}", where(), rc.user,
          cluster_.tls.enabled ? " (or the server refused the client certificate: check "
                                 "tls.cert_file and tls.key_file)"
                               : ""));
    } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
      int code = 0;
      bool ch = false;
      std::string text = server_text(reply, code, ch);
      last_code_ = code;
      if (code == kAccessRefused && text.find("Login was refused") != std::string::npos) {
        st = Status::retry(fmt::format(
            "{}: login refused for user '{}': check the user name and password", where(),
            rc.user));
      } else if (code == kNotFound || code == kAccessRefused || code == 530) {
        st = Status::retry(fmt::format(
            "{}: vhost '{}' does not exist or user '{}' has no access to it ({})", where(),
            rc.vhost, rc.user, text));
      } else {
        st = Status::retry(fmt::format("{}: login failed: {}", where(), text));
      }
    } else {
      st = Status::retry(fmt::format("{}: login failed: {}", where(),
                                     amqp_error_string2(reply.library_error)));
    }
    close();
    return st;
  }
  open_ = true;
  return Status::ok();
}

void Connection::close() {
  if (conn_ == nullptr) return;
  if (open_) {
    // Best effort: a broken socket simply fails here.
    timeval tv{2, 0};
    amqp_set_rpc_timeout(conn_, &tv);
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(conn_);
  conn_ = nullptr;
  open_ = false;
}

bool Connection::buffered() const {
  return conn_ != nullptr && (amqp_data_in_buffer(conn_) || amqp_frames_enqueued(conn_));
}

void Connection::cork(bool on) {
  const int sock = fd();
  if (sock < 0) return;
  const int v = on ? 1 : 0;
  (void)setsockopt(sock, IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
}

void Connection::set_rpc_timeout(Duration timeout) {
  if (conn_ == nullptr) return;
  timeval tv = to_timeval(timeout);
  amqp_set_rpc_timeout(conn_, &tv);
}

Status Connection::open_channel(amqp_channel_t channel) {
  amqp_channel_open(conn_, channel);
  return check(amqp_get_rpc_reply(conn_), fmt::format("opening channel {}", channel), channel);
}

Status Connection::library_error(int code, const std::string& what) {
  open_ = false;
  last_code_ = 0;
  return Status::retry(fmt::format("{}: {}: {}", where(), what, amqp_error_string2(code)));
}

Status Connection::check(const amqp_rpc_reply_t& reply, const std::string& what,
                         amqp_channel_t channel) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      last_code_ = 0;
      return Status::ok();
    case AMQP_RESPONSE_NONE:
      open_ = false;
      return Status::retry(fmt::format("{}: {}: missing RPC reply", where(), what));
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return library_error(reply.library_error, what);
    case AMQP_RESPONSE_SERVER_EXCEPTION: {
      int code = 0;
      bool channel_level = false;
      std::string text = server_text(reply, code, channel_level);
      last_code_ = code;
      if (channel_level) {
        amqp_channel_close_ok_t ok{};
        amqp_send_method(conn_, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
      } else {
        amqp_connection_close_ok_t ok{};
        amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        open_ = false;
      }
      return Status::retry(fmt::format("{}: {}: {}", where(), what, text));
    }
  }
  return Status::retry(fmt::format("{}: {}: unknown reply", where(), what));
}

Status Connection::on_server_close(const amqp_frame_t& frame, const std::string& what) {
  amqp_rpc_reply_t reply{};
  reply.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
  reply.reply = frame.payload.method;
  return check(reply, what, frame.channel);
}

Status Connection::queue_counts(amqp_channel_t channel, const std::string& queue,
                                std::optional<QueueCounts>& out) {
  out.reset();
  auto* ok = amqp_queue_declare(conn_, channel, bytes_of(queue), /*passive=*/1, 0, 0, 0,
                                amqp_empty_table);
  Status st = check(amqp_get_rpc_reply(conn_), fmt::format("checking queue '{}'", queue), channel);
  if (!st.is_ok()) {
    const int code = last_code_;
    if (code != 0 && is_open()) {
      Status reopened = open_channel(channel);
      if (!reopened.is_ok()) return reopened;
    }
    last_code_ = code;
    return st;
  }
  out = QueueCounts{ok->message_count, ok->consumer_count};
  return Status::ok();
}

Status Connection::exchange_exists(amqp_channel_t channel, const std::string& exchange,
                                   bool& exists) {
  exists = false;
  if (exchange.empty()) {
    exists = true;  // the default exchange always exists
    return Status::ok();
  }
  amqp_exchange_declare(conn_, channel, bytes_of(exchange), amqp_cstring_bytes("direct"),
                        /*passive=*/1, 0, 0, 0, amqp_empty_table);
  Status st =
      check(amqp_get_rpc_reply(conn_), fmt::format("checking exchange '{}'", exchange), channel);
  if (st.is_ok()) {
    exists = true;
    return st;
  }
  const int code = last_code_;
  if (code != 0 && is_open()) {
    Status reopened = open_channel(channel);
    if (!reopened.is_ok()) return reopened;
  }
  last_code_ = code;
  if (code == kNotFound) return Status::ok();
  return st;
}

}  // namespace mqdr::rabbitmq
