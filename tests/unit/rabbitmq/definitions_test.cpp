// Which standby queues belong to mirrored exchanges, and what definitions sync leaves out.

#include <gtest/gtest.h>

#include "rabbitmq/definitions.hpp"

namespace mqdr::rabbitmq {
namespace {

TEST(RabbitDefinitions, ReachableQueuesFollowExchangeToExchangeBindings) {
  auto b = [](const char* s, const char* type, const char* d) {
    return nlohmann::json{{"source", s}, {"destination_type", type}, {"destination", d},
                          {"routing_key", "k"}};
  };
  nlohmann::json bindings = nlohmann::json::array(
      {b("orders", "queue", "q1"), b("orders", "exchange", "fan"), b("fan", "queue", "q2"),
       b("fan", "exchange", "orders"),  // a cycle must not loop
       b("other", "queue", "q3"), b("orders", "queue", "mqdr.capture.m.orders")});
  auto qs = reachable_queues(bindings, {"orders"});
  EXPECT_EQ(qs, (std::set<std::string>{"q1", "q2"}));
  EXPECT_TRUE(reachable_queues(bindings, {"none"}).empty());
}

TEST(RabbitDefinitions, SkipsOwnAndServerObjects) {
  EXPECT_TRUE(DefinitionsSync::skip_exchange(""));
  EXPECT_TRUE(DefinitionsSync::skip_exchange("amq.topic"));
  EXPECT_FALSE(DefinitionsSync::skip_exchange("orders"));
  EXPECT_TRUE(DefinitionsSync::skip_queue({{"name", "mqdr.capture.m.x"}}));
  EXPECT_TRUE(DefinitionsSync::skip_queue({{"name", "amq.gen-123"}}));
  EXPECT_TRUE(DefinitionsSync::skip_queue({{"name", "reply"}, {"exclusive", true}}));
  EXPECT_FALSE(DefinitionsSync::skip_queue({{"name", "orders"}, {"exclusive", false}}));
}

}  // namespace
}  // namespace mqdr::rabbitmq
