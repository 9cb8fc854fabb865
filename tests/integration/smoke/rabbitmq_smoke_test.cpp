// RabbitMQ nodes A and B of the harness, vhosts `/` and `orders`, as the mqdr user: declare a
// queue, publish with publisher confirms, basic.get it back, ack, delete the queue. rabbitmq-c.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <gtest/gtest.h>

#include <sys/time.h>

#include <string>
#include <tuple>
#include <vector>

#include "tests/harness/endpoints.hpp"
#include "tests/integration/smoke/smoke_util.hpp"

namespace {

using mqdr::test::Endpoints;
using mqdr::test::smoke::unique_name;

std::string reply_text(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "";
    case AMQP_RESPONSE_NONE:
      return "missing RPC reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return "connection closed: " +
               std::string(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len);
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return "channel closed: " +
               std::string(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len);
      }
      return "server exception";
  }
  return "unknown reply";
}

// One AMQP connection with channel 1 open, logged in as the mqdr user.
class Amqp {
 public:
  Amqp() : conn_(amqp_new_connection()) {}
  Amqp(const Amqp&) = delete;
  Amqp& operator=(const Amqp&) = delete;
  ~Amqp() {
    if (open_) {
      amqp_channel_close(conn_, 1, AMQP_REPLY_SUCCESS);
      amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn_);
  }

  // "" or the error. `uri` as from the harness (no vhost); `vhost` chosen separately.
  std::string open(const std::string& uri, const std::string& vhost) {
    std::vector<char> buf(uri.begin(), uri.end());
    buf.push_back('\0');
    amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(buf.data(), &ci) != AMQP_STATUS_OK) return "cannot parse " + uri;
    amqp_socket_t* sock = amqp_tcp_socket_new(conn_);
    timeval tv{5, 0};
    if (int rc = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv); rc != AMQP_STATUS_OK) {
      return std::string("connect: ") + amqp_error_string2(rc);
    }
    if (auto e = reply_text(amqp_login(conn_, vhost.c_str(), 0, 131072, 30, AMQP_SASL_METHOD_PLAIN,
                                       ci.user, ci.password));
        !e.empty()) {
      return "login to vhost " + vhost + ": " + e;
    }
    amqp_channel_open(conn_, 1);
    if (auto e = reply_text(amqp_get_rpc_reply(conn_)); !e.empty()) return "channel: " + e;
    open_ = true;
    amqp_confirm_select(conn_, 1);
    if (auto e = reply_text(amqp_get_rpc_reply(conn_)); !e.empty()) return "confirm.select: " + e;
    return "";
  }

  amqp_connection_state_t get() const { return conn_; }

 private:
  amqp_connection_state_t conn_;
  bool open_ = false;
};

// Waits (bounded) for the broker's basic.ack of the last publish; "" or the error.
std::string wait_confirm(amqp_connection_state_t conn) {
  for (int frames = 0; frames < 16; ++frames) {
    amqp_frame_t frame;
    timeval tv{10, 0};
    const int rc = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
    if (rc != AMQP_STATUS_OK) return std::string("waiting for the confirm: ") + amqp_error_string2(rc);
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD:
        return "";
      case AMQP_BASIC_NACK_METHOD:
        return "the broker nacked the message";
      case AMQP_BASIC_RETURN_METHOD: {
        amqp_message_t returned;  // unroutable: body follows the return
        amqp_read_message(conn, frame.channel, &returned, 0);
        amqp_destroy_message(&returned);
        return "the message was returned as unroutable";
      }
      default:
        break;
    }
  }
  return "no confirm";
}

class RabbitSmoke : public ::testing::TestWithParam<std::tuple<char, std::string>> {
 protected:
  std::string uri() const {
    return std::get<0>(GetParam()) == 'a' ? Endpoints::get().rabbit_a : Endpoints::get().rabbit_b;
  }
  std::string vhost() const { return std::get<1>(GetParam()); }
};

TEST_P(RabbitSmoke, PublishConfirmedAndGet) {
  MQDR_REQUIRE_BROKER(uri());
  Amqp amqp;
  ASSERT_EQ(amqp.open(uri(), vhost()), "");
  amqp_connection_state_t c = amqp.get();
  const std::string queue = unique_name("mqdr-smoke-");

  amqp_queue_declare(c, 1, amqp_cstring_bytes(queue.c_str()), 0, 1, 0, 0, amqp_empty_table);
  ASSERT_EQ(reply_text(amqp_get_rpc_reply(c)), "") << "declare " << queue;

  const std::string body = "hello " + queue;
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;  // persistent
  props.content_type = amqp_cstring_bytes("text/plain");
  ASSERT_EQ(amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(queue.c_str()), 1, 0,
                               &props, amqp_cstring_bytes(body.c_str())),
            AMQP_STATUS_OK);
  ASSERT_EQ(wait_confirm(c), "");

  const amqp_rpc_reply_t got = amqp_basic_get(c, 1, amqp_cstring_bytes(queue.c_str()), 0);
  ASSERT_EQ(reply_text(got), "");
  ASSERT_EQ(got.reply.id, AMQP_BASIC_GET_OK_METHOD) << "queue " << queue << " is empty";
  const auto* ok = static_cast<amqp_basic_get_ok_t*>(got.reply.decoded);
  const uint64_t tag = ok->delivery_tag;
  amqp_message_t msg;
  ASSERT_EQ(reply_text(amqp_read_message(c, 1, &msg, 0)), "");
  EXPECT_EQ(std::string(static_cast<const char*>(msg.body.bytes), msg.body.len), body);
  amqp_destroy_message(&msg);
  EXPECT_EQ(amqp_basic_ack(c, 1, tag, 0), AMQP_STATUS_OK);

  amqp_queue_delete(c, 1, amqp_cstring_bytes(queue.c_str()), 0, 0);
  EXPECT_EQ(reply_text(amqp_get_rpc_reply(c)), "") << "delete " << queue;
}

INSTANTIATE_TEST_SUITE_P(
    Nodes, RabbitSmoke,
    ::testing::Combine(::testing::Values('a', 'b'), ::testing::Values(std::string("/"), std::string("orders"))),
    [](const auto& info) {
      const std::string vh = std::get<1>(info.param) == "/" ? "root" : std::get<1>(info.param);
      return std::string("rabbit_") + std::get<0>(info.param) + "_vhost_" + vh;
    });

}  // namespace
