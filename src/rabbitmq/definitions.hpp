#pragma once
// Definitions sync: exchanges, queues (classic, quorum, stream, with their arguments), bindings
// (to queues and exchange-to-exchange) and policies of the source vhost are applied to the
// target through both clusters' management APIs. Users and permissions are not copied; mqdr's
// own queues (mqdr.*), exclusive and server-named queues and the amq.* exchanges are left out.
// Existing target objects are never changed in place (RabbitMQ forbids redeclaring with other
// arguments): a difference is reported. Bindings and policies that disappear from the source
// after having been synced are removed from the target. Owned by one thread.

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mqdr/status.hpp"
#include "rabbitmq/management.hpp"

namespace mqdr::rabbitmq {

struct DefinitionsReport {
  int exchanges_created = 0;
  int queues_created = 0;
  int bindings_created = 0;
  int bindings_removed = 0;
  int policies_applied = 0;
  int policies_removed = 0;
  std::vector<std::string> problems;  // objects that could not be applied, and why
  nlohmann::json to_json() const;
};

class DefinitionsSync {
 public:
  DefinitionsSync(std::string mirror, Management& source, Management& target);

  // One pass. Ok when the source could be read and the target was reachable (per-object
  // problems are listed in `report` and logged, not fatal).
  Status run(DefinitionsReport& report);

  static bool skip_exchange(const std::string& name);
  static bool skip_queue(const nlohmann::json& q);

 private:
  std::string mirror_;
  Management& source_;
  Management& target_;
  std::set<std::string> synced_bindings_;  // binding ids applied earlier
  std::set<std::string> synced_policies_;
};

// Lists the queue-typed destinations reachable from `exchanges` through `bindings` (management
// API binding objects).
std::set<std::string> reachable_queues(const nlohmann::json& bindings,
                                       const std::vector<std::string>& exchanges);

}  // namespace mqdr::rabbitmq
