#include "config/uri.hpp"

#include <cctype>

namespace mqdr::config::detail {

namespace {

bool set_why(std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
  return false;
}

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
}

bool v6_char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.' || c == '%';
}

std::optional<int> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  int port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<HostPort> parse_host_port(std::string_view text, bool port_required,
                                        std::string* why) {
  HostPort out;
  std::string_view port_text;
  bool has_port = false;
  if (text.empty()) {
    set_why(why, "the address is empty");
    return std::nullopt;
  }
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      set_why(why, "missing ']' after the IPv6 address");
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    for (char c : out.host) {
      if (!v6_char(c)) {
        set_why(why, "not a valid IPv6 address between '[' and ']'");
        return std::nullopt;
      }
    }
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        set_why(why, "expected ':PORT' after ']'");
        return std::nullopt;
      }
      has_port = true;
      port_text = rest.substr(1);
    }
  } else {
    auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
      set_why(why, "an IPv6 address needs brackets, e.g. [::1]:9780");
      return std::nullopt;
    }
    out.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = text.substr(colon + 1);
    }
    for (char c : out.host) {
      if (!host_char(c)) {
        set_why(why, "the host may contain only letters, digits, '.', '-' and '_'");
        return std::nullopt;
      }
    }
  }
  if (out.host.empty()) {
    set_why(why, "the host is missing");
    return std::nullopt;
  }
  if (has_port) {
    auto port = parse_port(port_text);
    if (!port) {
      set_why(why, "the port must be a number from 1 to 65535");
      return std::nullopt;
    }
    out.port = *port;
  } else if (port_required) {
    set_why(why, "the port is missing (expected host:port)");
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int hi = hex_value(text[i + 1]);
    int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::optional<Url> parse_url(std::string_view text, std::string* why) {
  Url url;
  auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    set_why(why, "expected scheme://host");
    return std::nullopt;
  }
  for (std::size_t i = 0; i < sep; ++i) {
    char c = text[i];
    bool ok = std::isalpha(static_cast<unsigned char>(c)) != 0 ||
              (i > 0 && (std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '+' ||
                         c == '-' || c == '.'));
    if (!ok) {
      set_why(why, "the scheme (before '://') may contain only letters, digits, '+', '-', '.'");
      return std::nullopt;
    }
    url.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  auto rest = text.substr(sep + 3);
  auto authority_end = rest.find_first_of("/?#");
  auto authority = rest.substr(0, authority_end);
  auto tail = authority_end == std::string_view::npos ? std::string_view{}
                                                      : rest.substr(authority_end);
  auto at = authority.rfind('@');
  std::string_view hostport = authority;
  if (at != std::string_view::npos) {
    url.has_userinfo = true;
    auto userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    auto raw_user = userinfo.substr(0, colon);
    url.raw_userinfo = std::string(raw_user);
    auto user = percent_decode(raw_user);
    if (!user) {
      set_why(why, "invalid percent-encoding in the user name");
      return std::nullopt;
    }
    url.user = *user;
    if (colon != std::string_view::npos) {
      url.has_password = true;
      auto password = percent_decode(userinfo.substr(colon + 1));
      if (!password) {
        set_why(why, "invalid percent-encoding in the password");
        return std::nullopt;
      }
      url.password = *password;
    }
  }
  std::string host_why;
  auto hp = parse_host_port(hostport, false, &host_why);
  if (!hp) {
    set_why(why, host_why);
    return std::nullopt;
  }
  url.host = hp->host;
  url.port = hp->port;
  auto query_start = tail.find_first_of("?#");
  url.path = std::string(tail.substr(0, query_start));
  if (query_start != std::string_view::npos) {
    auto after = tail.substr(query_start);
    if (after.front() == '?') {
      url.has_query = true;
      auto hash = after.find('#');
      url.query = std::string(after.substr(1, hash == std::string_view::npos ? hash : hash - 1));
      if (hash != std::string_view::npos) url.has_fragment = true;
    } else {
      url.has_fragment = true;
    }
  }
  url.without_password = std::string(text.substr(0, sep + 3));
  if (url.has_userinfo) url.without_password += url.raw_userinfo + "@";
  url.without_password += std::string(hostport);
  url.without_password += std::string(tail);
  return url;
}

std::optional<AmqpUri> parse_amqp_uri(std::string_view text, std::string* why) {
  std::string url_why;
  auto url = parse_url(text, &url_why);
  if (!url) {
    set_why(why, url_why + "; expected amqp[s]://[user[:password]@]host[:port][/vhost] "
                           "(percent-encode special characters such as '@', ':', '/' in the "
                           "password, or use password_file)");
    return std::nullopt;
  }
  AmqpUri out;
  if (url->scheme == "amqps") {
    out.tls = true;
    out.port = 5671;
  } else if (url->scheme != "amqp") {
    set_why(why, "the scheme must be amqp:// or amqps://");
    return std::nullopt;
  }
  if (url->has_query) {
    set_why(why, "query parameters ('?...') are not supported; use the cluster's keys instead");
    return std::nullopt;
  }
  if (url->has_fragment) {
    set_why(why, "a fragment ('#...') is not allowed");
    return std::nullopt;
  }
  if (url->port != 0) out.port = url->port;
  out.host = url->host;
  out.has_user = url->has_userinfo && !url->user.empty();
  out.user = url->user;
  out.has_password = url->has_password;
  out.password = url->password;
  if (url->path.size() > 1) {
    auto raw = std::string_view(url->path).substr(1);
    if (raw.find('/') != std::string_view::npos) {
      set_why(why, "the vhost must be a single path segment (write '/' in a vhost name as %2F)");
      return std::nullopt;
    }
    auto vhost = percent_decode(raw);
    if (!vhost) {
      set_why(why, "invalid percent-encoding in the vhost");
      return std::nullopt;
    }
    out.vhost = *vhost;
  }
  out.without_password = url->without_password;
  return out;
}

}  // namespace mqdr::config::detail
