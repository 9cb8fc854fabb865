#pragma once
// Internal to src/config: small parsers for the addresses a config holds (host:port, URLs,
// AMQP URIs). They never put the text they parse into an error message: a URI may carry a
// password, so the caller decides what may be shown.

#include <optional>
#include <string>
#include <string_view>

namespace mqdr::config::detail {

struct HostPort {
  std::string host;  // without brackets for IPv6
  int port = 0;      // 0 = not given
};

// "host:port", "[::1]:port"; with `port_required` false also "host". `why` gets the reason.
std::optional<HostPort> parse_host_port(std::string_view text, bool port_required,
                                        std::string* why);

struct Url {
  std::string scheme;        // lower case
  std::string raw_userinfo;  // as written (percent-encoded), empty when absent
  bool has_userinfo = false;
  std::string user;          // percent-decoded
  bool has_password = false;
  std::string password;      // percent-decoded
  std::string host;          // without brackets for IPv6
  int port = 0;              // 0 = not given
  std::string path;          // as written, with its leading '/', empty when absent
  std::string query;         // without '?'
  bool has_query = false;
  bool has_fragment = false;
  std::string without_password;  // the text with ":password" removed from the userinfo
};

// scheme://[user[:password]@]host[:port][/path][?query][#fragment]
std::optional<Url> parse_url(std::string_view text, std::string* why);

// "%2F" -> "/"; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text);

struct AmqpUri {
  bool tls = false;  // amqps
  std::string user;
  bool has_user = false;
  std::string password;
  bool has_password = false;
  std::string host;
  int port = 5672;
  std::string vhost = "/";
  std::string without_password;
};

// amqp[s]://[user[:password]@]host[:port][/vhost]; the vhost is percent-decoded and "/" when
// the path is empty or "/".
std::optional<AmqpUri> parse_amqp_uri(std::string_view text, std::string* why);

}  // namespace mqdr::config::detail
