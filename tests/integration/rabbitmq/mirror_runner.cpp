// A process that runs one RabbitMQ MirrorWorker between the harness's nodes until SIGTERM/SIGINT,
// for tests that kill -9 the mirror mid-stream when the full `mqdr run` binary is not wanted.
//   rabbit_mirror_runner MIRROR EXCHANGE PREFETCH STATE_DIR

#include <signal.h>

#include <iostream>
#include <thread>

#include "rabbit_fixture.hpp"

int main(int argc, char** argv) {
  using namespace mqdr::test::rabbit;
  if (argc != 5) {
    std::cerr << "usage: rabbit_mirror_runner MIRROR EXCHANGE PREFETCH STATE_DIR\n";
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts: all inherit it

  auto ctx = mirror_context(argv[1], node_a(), node_b());
  ctx.mirror.rabbitmq.exchanges = {argv[2]};
  ctx.mirror.rabbitmq.prefetch = std::stoi(argv[3]);
  ctx.mirror.rabbitmq.refresh_interval = mqdr::Duration(2000);
  ctx.state_dir = argv[4];
  mqdr::rabbitmq::MirrorWorker worker(ctx);
  std::stop_source stop;
  mqdr::Status result;
  std::thread t([&] { result = worker.run(stop.get_token()); });
  int sig = 0;
  sigwait(&set, &sig);
  stop.request_stop();
  t.join();
  return result.is_ok() ? 0 : 1;
}
