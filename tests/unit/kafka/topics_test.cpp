#include "kafka/topics.hpp"

#include <gtest/gtest.h>

namespace mqdr::kafka {
namespace {

KafkaMirrorConfig cfg(std::vector<std::string> topics, std::vector<std::string> exclude,
                      std::string rename) {
  KafkaMirrorConfig c;
  c.topics = std::move(topics);
  c.exclude_topics = std::move(exclude);
  c.rename = std::move(rename);
  return c;
}

TEST(TopicPolicy, WholeNameRegexesAndExcludes) {
  TopicPolicy p(cfg({"orders\\..*", "payments"}, {".*\\.internal"}, "{topic}"), "east", "west");
  EXPECT_TRUE(p.selected("orders.eu"));
  EXPECT_TRUE(p.selected("payments"));
  EXPECT_FALSE(p.selected("payments2"));
  EXPECT_FALSE(p.selected("xorders.eu"));
  EXPECT_FALSE(p.selected("orders.eu.internal"));
  EXPECT_EQ(p.reason("orders.eu.internal"), "matched by exclude_topics");
  EXPECT_EQ(p.target_topic("orders.eu"), "orders.eu");
}

TEST(TopicPolicy, InternalTopicsNeverAndHeartbeatsAlways) {
  TopicPolicy p(cfg({".*"}, {}, "{topic}"), "east", "west");
  EXPECT_FALSE(p.selected("__consumer_offsets"));
  EXPECT_FALSE(p.selected("__transaction_state"));
  EXPECT_FALSE(p.selected("mqdr-offsets.m1"));
  EXPECT_FALSE(p.selected("mqdr-positions.m1"));
  TopicPolicy none(cfg({"nothing"}, {}, "{topic}"), "east", "west");
  EXPECT_TRUE(none.selected(kHeartbeatTopic));
}

TEST(TopicPolicy, SourcePrefixRenameAndLoopPrevention) {
  TopicPolicy p(cfg({".*"}, {}, "{source}.{topic}"), "east", "west");
  EXPECT_EQ(p.target_topic("orders"), "east.orders");
  EXPECT_TRUE(p.selected("orders"));
  // Written by the west -> east mirror: copying it back would make west.east.orders... loops.
  EXPECT_FALSE(p.selected("west.orders"));
  EXPECT_TRUE(p.selected("westerly"));
  EXPECT_EQ(apply_rename("dr-{source}-{topic}-x", "a", "t"), "dr-a-t-x");
}

TEST(TopicPolicy, BadRegexIsReported) {
  EXPECT_THROW(TopicPolicy(cfg({"orders("}, {}, "{topic}"), "a", "b"), std::invalid_argument);
}

}  // namespace
}  // namespace mqdr::kafka
