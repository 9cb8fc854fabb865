#include "kafka/probe.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <sstream>

namespace mqdr::kafka {

namespace {
using Clock = std::chrono::steady_clock;

// "host:port" or "[v6]:port" -> (host, port); nullopt when malformed.
std::optional<std::pair<std::string, std::string>> split_host_port(std::string s) {
  while (!s.empty() && s.front() == ' ') s.erase(0, 1);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, s.substr(colon + 1));
}

}  // namespace

// True when every bootstrap server actively refuses TCP connections right now (a dead broker
// process on a live host): the probe then fails at once instead of waiting out its timeout in
// librdkafka's retries. A server that accepts, times out or cannot be resolved counts as "not
// refused" and the normal probe decides.
bool every_server_refuses(const std::string& bootstrap, int wait_ms) {
  std::stringstream in(bootstrap);
  std::string item;
  int servers = 0;
  while (std::getline(in, item, ',')) {
    auto hp = split_host_port(item);
    if (!hp) return false;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(hp->first.c_str(), hp->second.c_str(), &hints, &res) != 0 || res == nullptr) {
      return false;
    }
    bool refused_all = true;
    for (addrinfo* a = res; a != nullptr && refused_all; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        refused_all = false;
        break;
      }
      int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
      int err = rc == 0 ? 0 : errno;
      if (rc != 0 && err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, wait_ms) == 1) {
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        } else {
          err = ETIMEDOUT;
        }
      }
      ::close(fd);
      if (err != ECONNREFUSED) refused_all = false;
    }
    ::freeaddrinfo(res);
    if (!refused_all) return false;
    ++servers;
  }
  return servers > 0;
}

int ms_left(Clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

KafkaProbe::KafkaProbe(ClusterConfig cluster) : cluster_(std::move(cluster)) {
  producer_label_.label = "cluster=" + cluster_.name + " role=probe";
  producer_label_.owner = this;
  consumer_label_.label = "cluster=" + cluster_.name + " role=probe";
}

void KafkaProbe::dr_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<KafkaProbe*>(static_cast<ClientLabel*>(opaque)->owner);
  if (reinterpret_cast<std::uintptr_t>(m->_private) != self->seq_) return;  // an older probe
  self->delivered_ = true;
  self->delivery_err_ = m->err;
  self->delivered_offset_ = m->offset;
}

ProbeResult KafkaProbe::check(Duration timeout) {
  ProbeResult r;
  const auto start = Clock::now();
  const auto until = start + timeout;
  auto fail = [&](std::string why) {
    r.ok = false;
    r.message = std::move(why);
    r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    return r;
  };
  if (every_server_refuses(cluster_.kafka.bootstrap_servers,
                           static_cast<int>(std::min<long long>(200, timeout.count())))) {
    return fail("every bootstrap server refuses connections (" + cluster_.kafka.bootstrap_servers +
                ")");
  }
  try {
    if (!producer_) {
      const std::string t = std::to_string(std::max<long long>(1000, timeout.count()));
      auto pc = make_conf(cluster_, {{"client.id", "mqdr-probe"}, {"acks", "all"}, {"linger.ms", "0"},
                                     {"message.timeout.ms", t}, {"socket.timeout.ms", t}},
                          {}, &producer_label_);
      rd_kafka_conf_set_dr_msg_cb(pc.get(), dr_cb);
      producer_ = make_client(RD_KAFKA_PRODUCER, std::move(pc));
      consumer_ = make_client(RD_KAFKA_CONSUMER,
                              make_conf(cluster_, {{"client.id", "mqdr-probe"},
                                                   {"enable.auto.commit", "false"}, {"group.id", "mqdr-probe"},
                                                   {"enable.partition.eof", "false"}},
                                        {}, &consumer_label_));
    }
    ClusterMeta md = fetch_metadata(producer_.get(), std::max(1, ms_left(until)));
    if (md.brokers == 0) return fail("metadata lists no broker");
    if (!topic_ready_) {
      if (md.topics.count(kProbeTopic) == 0) {
        create_topics(producer_.get(), {NewTopicSpec{kProbeTopic, 1, {{"retention.ms", "3600000"}}}},
                      std::max(1, ms_left(until)));
      }
      topic_ready_ = true;
    }
  } catch (const KafkaError& e) {
    return fail(e.what());
  }

  ++seq_;
  delivered_ = false;
  const std::string value = "probe " + std::to_string(seq_);
  auto err = rd_kafka_producev(producer_.get(), RD_KAFKA_V_TOPIC(kProbeTopic.c_str()),
                               RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                               RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(seq_)), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return fail("produce to " + kProbeTopic + ": " + err_text(err));
  while (!delivered_ && ms_left(until) > 0) rd_kafka_poll(producer_.get(), std::min(50, ms_left(until)));
  if (!delivered_) return fail("produce to " + kProbeTopic + " not acknowledged in time");
  if (delivery_err_ != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return fail("produce to " + kProbeTopic + ": " + err_text(delivery_err_));
  }

  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, kProbeTopic.c_str(), 0)->offset = delivered_offset_;
  rd_kafka_assign(consumer_.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  bool fetched = false;
  std::string why = "fetch of the probe record timed out";
  while (!fetched && ms_left(until) > 0) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), std::min(100, ms_left(until)));
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->offset == delivered_offset_) {
      fetched = true;
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      why = std::string("fetch: ") + rd_kafka_message_errstr(m);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(consumer_.get(), nullptr);
  if (!fetched) return fail(why);
  r.ok = true;
  r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return r;
}

}  // namespace mqdr::kafka
