#pragma once
// One AMQP 0-9-1 connection (rabbitmq-c), used by exactly one thread. Owns the rabbitmq-c
// connection state and socket; closed on destruction. Every error is turned into a Status whose
// message names the cluster and says what to check, and never contains the password.

#include <amqp.h>

#include <cstdint>
#include <optional>
#include <string>

#include "mqdr/config.hpp"
#include "mqdr/status.hpp"

namespace mqdr::rabbitmq {

// AMQP reply codes we act on.
inline constexpr int kNotFound = 404;
inline constexpr int kAccessRefused = 403;
inline constexpr int kPreconditionFailed = 406;
inline constexpr int kResourceLocked = 405;

struct QueueCounts {
  std::uint32_t messages = 0;   // ready messages
  std::uint32_t consumers = 0;
};

class Connection {
 public:
  // `label` names the user of the connection in logs and in the broker's connection list,
  // e.g. "mirror orders-rabbit source".
  Connection(ClusterConfig cluster, std::string label);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects, logs in and sets RPC timeouts. `heartbeat_s` 0 disables heartbeats.
  Status open(Duration timeout, int heartbeat_s = 30);
  bool is_open() const { return conn_ != nullptr && open_; }
  void close();

  amqp_connection_state_t state() { return conn_; }
  // The socket (-1 when closed), for poll() and socket options.
  int fd() const { return conn_ != nullptr ? amqp_get_sockfd(conn_) : -1; }
  // True when rabbitmq-c already holds received bytes or decoded frames: a poll() on fd() would
  // not see them.
  bool buffered() const;
  // TCP_CORK on the socket: while corked, the kernel sends only full segments, so the many small
  // frames of a batch of publishes leave in a few large segments (one receive on the broker's
  // side instead of one per message). Uncorking sends what is left at once. Works under TLS too
  // (it is a TCP option); a failure only loses the coalescing.
  void cork(bool on);
  const ClusterConfig& cluster() const { return cluster_; }
  const std::string& label() const { return label_; }

  Status open_channel(amqp_channel_t channel);
  // How long a synchronous RPC may take (default: the open() timeout).
  void set_rpc_timeout(Duration timeout);

  // Interprets the reply of the last rabbitmq-c RPC. On a channel-level server exception the
  // channel is acknowledged closed (close-ok sent) so it can be reopened; on a connection-level
  // one the connection is marked closed. reply_code() gives the AMQP code of the last failure.
  Status check(const amqp_rpc_reply_t& reply, const std::string& what, amqp_channel_t channel);
  int reply_code() const { return last_code_; }
  // Marks the connection broken after a library error on the data path (socket closed, ...).
  Status library_error(int code, const std::string& what);

  // Answers a server-initiated channel.close / connection.close frame and returns the reason.
  Status on_server_close(const amqp_frame_t& frame, const std::string& what);

  // Passive declares on `channel` (reopened after a 404). nullopt with reply_code()==404 when the
  // object does not exist; the Status says why otherwise.
  Status queue_counts(amqp_channel_t channel, const std::string& queue,
                      std::optional<QueueCounts>& out);
  Status exchange_exists(amqp_channel_t channel, const std::string& exchange, bool& exists);

  // "cluster 'a' (127.0.0.1:35672, vhost '/')" for messages.
  std::string where() const;

 private:
  ClusterConfig cluster_;
  std::string label_;
  amqp_connection_state_t conn_ = nullptr;
  bool open_ = false;
  int last_code_ = 0;
  // OpenSSL's verdict on the server's certificate in the last TLS handshake (X509_V_ERR_*),
  // written by OpenSSL through a callback on this connection's TLS context.
  long cert_error_ = 0;
};

// amqp_bytes_t view of a std::string (no copy; valid while the string lives).
inline amqp_bytes_t bytes_of(const std::string& s) {
  amqp_bytes_t b;
  b.len = s.size();
  b.bytes = const_cast<char*>(s.data());
  return b;
}
inline std::string str_of(const amqp_bytes_t& b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

}  // namespace mqdr::rabbitmq
