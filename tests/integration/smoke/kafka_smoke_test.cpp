// Kafka clusters A and B of the harness: create a topic (auto-creation is off), produce with an
// idempotent and with a transactional producer, read both back read_committed in a consumer
// group, commit, delete the topic. librdkafka C API.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/harness/endpoints.hpp"
#include "tests/integration/smoke/smoke_util.hpp"

namespace {

using namespace std::chrono_literals;
using mqdr::test::Endpoints;
using mqdr::test::smoke::Deadline;
using mqdr::test::smoke::unique_name;

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

struct Delivery {
  int delivered = 0;
  rd_kafka_resp_err_t last_error = RD_KAFKA_RESP_ERR_NO_ERROR;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* d = static_cast<Delivery*>(opaque);
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    d->last_error = m->err;
  } else {
    ++d->delivered;
  }
}

// A client with the given properties, or a null pointer and a message in `error`.
KafkaPtr make_client(rd_kafka_type_t type,
                     const std::vector<std::pair<std::string, std::string>>& props,
                     Delivery* delivery, std::string& error) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      error = k + ": " + errstr;
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
  }
  if (delivery != nullptr) {
    rd_kafka_conf_set_opaque(conf, delivery);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);  // owns conf on success
  if (rk == nullptr) {
    error = errstr;
    rd_kafka_conf_destroy(conf);
  }
  return KafkaPtr(rk);
}

// Runs one admin request (CreateTopics or DeleteTopics) and returns "" or the error.
std::string topic_admin(rd_kafka_t* rk, const std::string& topic, bool create) {
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
  char errstr[512];
  rd_kafka_AdminOptions_set_operation_timeout(opts, 30000, errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_request_timeout(opts, 30000, errstr, sizeof errstr);
  if (create) {
    // replication factor -1: the broker default (3 on a 3-node kafka-a).
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), 1, -1, errstr, sizeof errstr);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rd_kafka_NewTopic_destroy(nt);
  } else {
    rd_kafka_DeleteTopic_t* dt = rd_kafka_DeleteTopic_new(topic.c_str());
    rd_kafka_DeleteTopics(rk, &dt, 1, opts, q);
    rd_kafka_DeleteTopic_destroy(dt);
  }
  std::string result = "no answer within 40s";
  if (rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 40000); ev != nullptr) {
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result = rd_kafka_event_error_string(ev);
    } else {
      size_t n = 0;
      const rd_kafka_topic_result_t** res =
          create ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n)
                 : rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
      result.clear();
      for (size_t i = 0; i < n; ++i) {
        if (rd_kafka_topic_result_error(res[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
          result = std::string(rd_kafka_err2str(rd_kafka_topic_result_error(res[i]))) + ": " +
                   (rd_kafka_topic_result_error_string(res[i]) ? rd_kafka_topic_result_error_string(res[i]) : "");
        }
      }
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  return result;
}

std::string error_text(const ErrorPtr& e) { return e ? rd_kafka_error_string(e.get()) : ""; }

class KafkaSmoke : public ::testing::TestWithParam<char> {
 protected:
  std::string bootstrap() const {
    return GetParam() == 'a' ? Endpoints::get().kafka_a : Endpoints::get().kafka_b;
  }
};

TEST_P(KafkaSmoke, ProduceIdempotentAndTransactionalThenConsume) {
  MQDR_REQUIRE_BROKER(bootstrap());
  const std::string topic = unique_name("mqdr-smoke-");
  std::string error;

  Delivery delivery;
  KafkaPtr producer = make_client(RD_KAFKA_PRODUCER,
                                  {{"bootstrap.servers", bootstrap()},
                                   {"enable.idempotence", "true"},
                                   {"message.timeout.ms", "30000"}},
                                  &delivery, error);
  ASSERT_TRUE(producer) << error;
  ASSERT_EQ(topic_admin(producer.get(), topic, true), "") << "creating topic " << topic;

  // 1. idempotent producer
  const std::string v1 = "idempotent-" + topic;
  ASSERT_EQ(rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                              RD_KAFKA_V_KEY("k1", 2),
                              RD_KAFKA_V_VALUE(const_cast<char*>(v1.data()), v1.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_flush(producer.get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(delivery.last_error, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(delivery.last_error);
  ASSERT_EQ(delivery.delivered, 1);

  // 2. transactional producer (needs __transaction_state, created on first use)
  Delivery tx_delivery;
  KafkaPtr tx = make_client(RD_KAFKA_PRODUCER,
                            {{"bootstrap.servers", bootstrap()},
                             {"transactional.id", "mqdr-smoke-tx-" + topic},
                             {"transaction.timeout.ms", "60000"}},
                            &tx_delivery, error);
  ASSERT_TRUE(tx) << error;
  ASSERT_EQ(error_text(ErrorPtr(rd_kafka_init_transactions(tx.get(), 60000))), "");
  ASSERT_EQ(error_text(ErrorPtr(rd_kafka_begin_transaction(tx.get()))), "");
  const std::string v2 = "transactional-" + topic;
  ASSERT_EQ(rd_kafka_producev(tx.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY("k2", 2),
                              RD_KAFKA_V_VALUE(const_cast<char*>(v2.data()), v2.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(error_text(ErrorPtr(rd_kafka_commit_transaction(tx.get(), 60000))), "");
  EXPECT_EQ(tx_delivery.delivered, 1);

  // 3. read both back, read_committed, in a consumer group, and commit the position
  KafkaPtr consumer = make_client(RD_KAFKA_CONSUMER,
                                  {{"bootstrap.servers", bootstrap()},
                                   {"group.id", "mqdr-smoke-group-" + topic},
                                   {"auto.offset.reset", "earliest"},
                                   {"enable.auto.commit", "false"},
                                   {"isolation.level", "read_committed"}},
                                  nullptr, error);
  ASSERT_TRUE(consumer) << error;
  rd_kafka_poll_set_consumer(consumer.get());
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, topic.c_str(), RD_KAFKA_PARTITION_UA);
  ASSERT_EQ(rd_kafka_subscribe(consumer.get(), sub), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(sub);

  std::vector<std::string> values;
  Deadline deadline(60s);
  while (values.size() < 2 && !deadline.expired()) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 500);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      values.emplace_back(static_cast<const char*>(m->payload), m->len);
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ADD_FAILURE() << "consume: " << rd_kafka_message_errstr(m);
    }
    rd_kafka_message_destroy(m);
  }
  ASSERT_EQ(values, (std::vector<std::string>{v1, v2}));
  EXPECT_EQ(rd_kafka_commit(consumer.get(), nullptr, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_consumer_close(consumer.get());

  // The clients go before their topic does: librdkafka 2.0's rd_kafka_destroy() of a client
  // whose topic was deleted under it waited 5 minutes each in a CI run.
  consumer.reset();
  tx.reset();
  producer.reset();
  Delivery admin_delivery;
  KafkaPtr admin = make_client(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap()}},
                               &admin_delivery, error);
  ASSERT_TRUE(admin) << error;
  EXPECT_EQ(topic_admin(admin.get(), topic, false), "") << "deleting topic " << topic;
}

TEST_P(KafkaSmoke, AutoCreateIsOff) {
  MQDR_REQUIRE_BROKER(bootstrap());
  std::string error;
  Delivery delivery;
  KafkaPtr producer = make_client(RD_KAFKA_PRODUCER,
                                  {{"bootstrap.servers", bootstrap()},
                                   {"message.timeout.ms", "3000"}},
                                  &delivery, error);
  ASSERT_TRUE(producer) << error;
  const std::string topic = unique_name("mqdr-smoke-absent-");
  ASSERT_EQ(rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                              RD_KAFKA_V_VALUE(const_cast<char*>("x"), 1),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_flush(producer.get(), 10000);
  EXPECT_EQ(delivery.delivered, 0) << "the broker created " << topic << " on first use";
  EXPECT_NE(delivery.last_error, RD_KAFKA_RESP_ERR_NO_ERROR);
}

INSTANTIATE_TEST_SUITE_P(Clusters, KafkaSmoke, ::testing::Values('a', 'b'),
                         [](const auto& info) { return std::string("kafka_") + info.param; });

}  // namespace
