#include "nats/client.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <sstream>

#include "mqdr/tls_errors.hpp"

// cnats keeps a received message as one block: the natsMsg struct, then subject, reply, raw
// header block and payload, each followed by a NUL (natsMsg_create in cnats' msg.c). Its public
// API only offers headers through a hash map, which loses their order; to keep headers byte for
// byte we read the block between the reply (or subject) and the payload, and publish through the
// same constructor, which makes cnats send a header block unchanged. Both are checked: the block
// must start with the NATS header line, or it is not used.
extern "C" natsStatus natsMsg_create(natsMsg** newMsg, const char* subject, int subjLen,
                                     const char* reply, int replyLen, const char* buf,
                                     int bufLen, int hdrLen);
static_assert(NATS_VERSION_MAJOR == 3, "raw header access is written for cnats 3.x");

namespace mqdr::nats {

namespace {
constexpr std::string_view kHeaderLine = "NATS/1.0";
constexpr std::string_view kCrlf = "\r\n";
}  // namespace

std::string error_text(natsStatus s, jsErrCode code) {
  natsStatus last_status = NATS_OK;
  const char* last = nats_GetLastError(&last_status);
  std::string text = natsStatus_GetText(s);
  if (last != nullptr && *last != '\0' && text != last) text = std::string(last);
  if (static_cast<int>(code) != 0) text += fmt::format(" (JetStream error {})", static_cast<int>(code));
  return text;
}

namespace {

// NKeys (github.com/nats-io/nkeys): base32 (RFC 4648, no padding) of a prefix, an Ed25519 key
// and a CRC-16/XMODEM of both, little-endian.
constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr unsigned char kPrefixSeed = 18 << 3;  // 'S'
constexpr unsigned char kPrefixUser = 20 << 3;  // 'U'

std::uint16_t crc16(const unsigned char* data, std::size_t n) {
  std::uint16_t crc = 0;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= static_cast<std::uint16_t>(data[i] << 8);
    for (int b = 0; b < 8; ++b) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

bool base32_decode(std::string_view text, std::vector<unsigned char>& out) {
  out.clear();
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    const auto pos = kBase32.find(c);
    if (pos == std::string_view::npos) return false;
    buffer = (buffer << 5) | static_cast<unsigned>(pos);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((buffer >> bits) & 0xFF));
    }
  }
  return true;
}

std::string base32_encode(const unsigned char* data, std::size_t n) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    buffer = (buffer << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kBase32[(buffer >> bits) & 31]);
    }
  }
  if (bits > 0) out.push_back(kBase32[(buffer << (5 - bits)) & 31]);
  return out;
}

}  // namespace

std::string nkey_public_from_seed(std::string_view seed, std::string& error) {
  std::vector<unsigned char> raw;
  std::string result;
  if (!base32_decode(seed, raw) || raw.size() != 36) {
    error = "not an NKey seed (expected 58 base32 characters starting with 'SU')";
  } else if (crc16(raw.data(), 34) != (raw[34] | (raw[35] << 8))) {
    error = "the NKey seed's checksum is wrong (a truncated or mistyped seed?)";
  } else if ((raw[0] & 0xF8) != kPrefixSeed ||
             (((raw[0] & 7) << 5) | ((raw[1] & 0xF8) >> 3)) != kPrefixUser) {
    error = "not a user NKey seed (it must start with 'SU')";
  } else {
    EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data() + 2, 32);
    std::array<unsigned char, 35> pub{};
    std::size_t len = 32;
    if (key == nullptr || EVP_PKEY_get_raw_public_key(key, pub.data() + 1, &len) != 1 ||
        len != 32) {
      error = "cannot derive the public key of the NKey seed";
    } else {
      pub[0] = kPrefixUser;
      const std::uint16_t crc = crc16(pub.data(), 33);
      pub[33] = static_cast<unsigned char>(crc & 0xFF);
      pub[34] = static_cast<unsigned char>(crc >> 8);
      result = base32_encode(pub.data(), pub.size());
    }
    EVP_PKEY_free(key);
  }
  OPENSSL_cleanse(raw.data(), raw.size());
  return result;
}

std::string url_host(std::string_view url) {
  if (auto scheme = url.find("://"); scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  if (auto slash = url.find('/'); slash != std::string_view::npos) url = url.substr(0, slash);
  if (auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  if (!url.empty() && url.front() == '[') {
    auto close = url.find(']');
    return std::string(url.substr(1, close == std::string_view::npos ? url.size() - 1 : close - 1));
  }
  if (auto colon = url.rfind(':'); colon != std::string_view::npos) url = url.substr(0, colon);
  return std::string(url);
}

std::string tls_name_to_check(const ClusterConfig& cluster) {
  const auto& tls = cluster.tls;
  if (!tls.verify || !tls.verify_hostname) return {};
  if (!tls.server_name.empty()) return tls.server_name;
  return cluster.nats.servers.empty() ? std::string() : url_host(cluster.nats.servers.front());
}

namespace {

// cnats reports a failed handshake as "SSL handshake error: CODE:TEXT:..." (CODE is OpenSSL's
// X509_V_ERR_*) and a refused login as "Authorization Violation": say what to check.
std::string explain_connect_error(const ClusterConfig& cluster, std::string text) {
  const std::string marker = "SSL handshake error: ";
  if (auto at = text.find(marker); at != std::string::npos) {
    const std::string rest = text.substr(at + marker.size());
    const auto colon = rest.find(':');
    if (colon != std::string::npos && colon > 0 &&
        rest.find_first_not_of("0123456789") == colon) {
      const long code = std::stol(rest.substr(0, colon));
      auto end = rest.find(':', colon + 1);
      const std::string openssl_text = rest.substr(colon + 1, end == std::string::npos
                                                                   ? std::string::npos
                                                                   : end - colon - 1);
      std::string host = tls_name_to_check(cluster);
      if (auto expected = rest.find("expected="); expected != std::string::npos) {
        host = rest.substr(expected + 9, rest.find(':', expected) - expected - 9);
      }
      return text.substr(0, at) + "TLS handshake failed: " +
             explain_certificate_error(code, openssl_text, host) + " [" + rest + "]";
    }
    return text + " (check tls.ca_file, tls.cert_file and tls.key_file: the server may require a "
                  "client certificate)";
  }
  std::string lower = text;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (cluster.tls.enabled && lower.find("expected 'pong', got ''") != std::string::npos) {
    return text + " (the server closed the connection after the TLS handshake" +
           (cluster.tls.cert_file.empty()
                ? std::string(": it probably requires a client certificate; set tls.cert_file "
                              "and tls.key_file)")
                : std::string(": it probably refused the client certificate in tls.cert_file)"));
  }
  if (lower.find("authorization violation") != std::string::npos ||
      lower.find("authentication") != std::string::npos) {
    return text + " (the server refused the credentials: check token / token_file, user and "
                  "password, or credentials_file)";
  }
  return text;
}

}  // namespace

void ensure_library() {
  static std::once_flag once;
  std::call_once(once, [] { nats_Open(-1); });
}

Status Connection::connect(const ClusterConfig& cluster, const std::string& name,
                           Duration timeout) {
  ensure_library();
  natsOptions* raw = nullptr;
  if (natsOptions_Create(&raw) != NATS_OK) return Status::fatal("cannot allocate NATS options");
  Ptr<natsOptions> opts(raw);
  const auto& n = cluster.nats;
  if (n.servers.empty()) return Status::fatal("cluster " + cluster.name + " has no servers");
  std::vector<const char*> servers;
  for (const auto& s : n.servers) servers.push_back(s.c_str());
  natsStatus s = natsOptions_SetServers(opts.get(), servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts.get(), name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts.get(), std::max<std::int64_t>(timeout.count(), 100));
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts.get(), -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts.get(), 250);
  if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts.get(), 64 << 20);
  if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs(opts.get(), 1 << 20);
  if (s == NATS_OK) s = natsOptions_SetPingInterval(opts.get(), 5000);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts.get(), 3);
  if (s == NATS_OK && !n.credentials_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts.get(), n.credentials_file.c_str(), nullptr);
  }
  if (s == NATS_OK && !n.nkey_seed_file.empty() && n.credentials_file.empty()) {
    // cnats signs the server's nonce with the seed (read from the file at each connect) and
    // sends the public key, which it cannot work out itself.
    std::ifstream in(n.nkey_seed_file);
    std::string line, seed;
    while (std::getline(in, line)) {
      const auto start = line.find_first_not_of(" \t\r");
      if (start != std::string::npos && line.compare(start, 2, "SU") == 0) {
        seed = line.substr(start, line.find_last_not_of(" \t\r") + 1 - start);
        break;
      }
    }
    OPENSSL_cleanse(line.data(), line.size());
    std::string why;
    const std::string pub = seed.empty() ? std::string() : nkey_public_from_seed(seed, why);
    OPENSSL_cleanse(seed.data(), seed.size());
    if (pub.empty()) {
      return Status::fatal("cluster " + cluster.name + ": nkey_seed_file " + n.nkey_seed_file +
                           ": " + (why.empty() ? "no line starting with 'SU' (a user seed)" : why));
    }
    s = natsOptions_SetNKeyFromSeed(opts.get(), pub.c_str(), n.nkey_seed_file.c_str());
  }
  if (s == NATS_OK && !n.token.empty()) s = natsOptions_SetToken(opts.get(), n.token.reveal().c_str());
  if (s == NATS_OK && !n.user.empty()) {
    s = natsOptions_SetUserInfo(opts.get(), n.user.c_str(), n.password.reveal().c_str());
  }
  const auto& tls = cluster.tls;
  bool secure = tls.enabled;
  for (const auto& url : n.servers) secure = secure || url.rfind("tls://", 0) == 0;
  if (s == NATS_OK && secure) {
    s = natsOptions_SetSecure(opts.get(), true);
    if (s == NATS_OK && !tls.ca_file.empty())
      s = natsOptions_LoadCATrustedCertificates(opts.get(), tls.ca_file.c_str());
    if (s == NATS_OK && !tls.cert_file.empty())
      s = natsOptions_LoadCertificatesChain(opts.get(), tls.cert_file.c_str(), tls.key_file.c_str());
    if (s == NATS_OK && !tls.verify) s = natsOptions_SkipServerVerification(opts.get(), true);
    // cnats checks the server's name only when told which name to expect: the configured
    // server_name, or else the host of the (first) server address.
    if (const std::string name = tls_name_to_check(cluster); s == NATS_OK && !name.empty())
      s = natsOptions_SetExpectedHostname(opts.get(), name.c_str());
  }
  if (s != NATS_OK) {
    return Status::fatal("cluster " + cluster.name + ": bad connection settings: " + error_text(s));
  }
  natsConnection* conn = nullptr;
  s = natsConnection_Connect(&conn, opts.get());
  if (s != NATS_OK) {
    return Status::retry("cannot connect to cluster " + cluster.name + ": " +
                         explain_connect_error(cluster, error_text(s)));
  }
  conn_.reset(conn);
  return Status::ok();
}

Status Connection::jetstream(const ClusterConfig& cluster, Duration wait, Ptr<jsCtx>& out,
                             const jsOptions* base) const {
  if (!conn_) return Status::retry("not connected to cluster " + cluster.name);
  jsOptions jo;
  if (base != nullptr) {
    jo = *base;
  } else {
    jsOptions_Init(&jo);
  }
  if (!cluster.nats.api_prefix.empty()) {
    jo.Prefix = cluster.nats.api_prefix.c_str();
  } else if (!cluster.nats.domain.empty()) {
    jo.Domain = cluster.nats.domain.c_str();
  }
  jo.Wait = std::max<std::int64_t>(wait.count(), 100);
  jsCtx* js = nullptr;
  natsStatus s = natsConnection_JetStream(&js, conn_.get(), &jo);
  if (s != NATS_OK) return Status::fatal("cannot create JetStream context: " + error_text(s));
  out.reset(js);
  return Status::ok();
}

void Connection::close() {
  if (conn_) natsConnection_Close(conn_.get());
  conn_.reset();
}

std::string_view raw_header_block(natsMsg* msg) {
  const char* data = natsMsg_GetData(msg);
  const char* subject = natsMsg_GetSubject(msg);
  if (data == nullptr || subject == nullptr) return {};
  const char* reply = natsMsg_GetReply(msg);
  const char* start = reply != nullptr ? reply + std::strlen(reply) + 1 : subject + std::strlen(subject) + 1;
  // Without headers the payload follows the subject/reply directly.
  if (data <= start + 1) return {};
  std::string_view block(start, static_cast<std::size_t>(data - 1 - start));
  if (block.substr(0, kHeaderLine.size()) != kHeaderLine) return {};
  return block;
}

bool parse_header_block(std::string_view block, std::vector<Header>& out) {
  out.clear();
  if (block.empty()) return true;
  std::size_t eol = block.find(kCrlf);
  if (eol == std::string_view::npos) return false;
  std::size_t pos = eol + 2;
  while (pos < block.size()) {
    eol = block.find(kCrlf, pos);
    if (eol == std::string_view::npos) return false;
    if (eol == pos) break;  // the empty line that ends the block
    std::string_view line = block.substr(pos, eol - pos);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    std::string_view key = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    out.push_back(Header{std::string(key), std::string(value)});
    pos = eol + 2;
  }
  return true;
}

void append_header_lines(std::string& out, const std::vector<Header>& headers) {
  for (const auto& h : headers) {
    out.append(h.key);
    out.append(": ");
    if (h.value) out.append(*h.value);
    out.append(kCrlf);
  }
}

Status make_raw_message(const std::string& subject, std::string_view header_block,
                        std::string_view payload, Ptr<natsMsg>& out) {
  std::string buf;
  buf.reserve(header_block.size() + payload.size());
  buf.append(header_block);
  buf.append(payload);
  natsMsg* msg = nullptr;
  natsStatus s = natsMsg_create(&msg, subject.data(), static_cast<int>(subject.size()), nullptr, 0,
                                buf.data(), static_cast<int>(buf.size()),
                                static_cast<int>(header_block.size()));
  if (s != NATS_OK) return Status::fatal("cannot build a message: " + error_text(s));
  out.reset(msg);
  return Status::ok();
}

std::optional<std::string> last_header_value(std::string_view block, std::string_view key) {
  std::vector<Header> headers;
  if (!parse_header_block(block, headers)) return std::nullopt;
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (it->key == key) return it->value;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> last_relayed_sequence(jsCtx* js, const std::string& stream,
                                                   const std::string& source_stream,
                                                   std::string& error) {
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js, stream.c_str(), nullptr, &code);
  if (s != NATS_OK) {
    if (code == JSStreamNotFoundErr) return 0;
    error = "stream info of " + stream + " on the target: " + error_text(s, code);
    return std::nullopt;
  }
  Ptr<jsStreamInfo> info(si);
  const std::uint64_t last = info->State.LastSeq;
  if (info->State.Msgs == 0 || last == 0) return 0;
  natsMsg* raw = nullptr;
  s = js_GetMsg(&raw, js, stream.c_str(), last, nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) return 0;
  if (s != NATS_OK) {
    error = "last message of " + stream + " on the target: " + error_text(s, code);
    return std::nullopt;
  }
  Ptr<natsMsg> msg(raw);
  // js_GetMsg returns a message whose headers were decoded from JSON; read them through the API.
  const char* from = nullptr;
  const char* seq = nullptr;
  if (natsMsgHeader_Get(msg.get(), std::string(kSourceStreamHeader).c_str(), &from) != NATS_OK ||
      natsMsgHeader_Get(msg.get(), std::string(kSourceSeqHeader).c_str(), &seq) != NATS_OK) {
    return 0;
  }
  // With several hops the last value is ours: read them all.
  const char** values = nullptr;
  int count = 0;
  std::string from_value = from;
  if (natsMsgHeader_Values(msg.get(), std::string(kSourceStreamHeader).c_str(), &values, &count) ==
          NATS_OK &&
      count > 0) {
    from_value = values[count - 1];
    free(const_cast<char**>(values));
  }
  std::string seq_value = seq;
  values = nullptr;
  count = 0;
  if (natsMsgHeader_Values(msg.get(), std::string(kSourceSeqHeader).c_str(), &values, &count) ==
          NATS_OK &&
      count > 0) {
    seq_value = values[count - 1];
    free(const_cast<char**>(values));
  }
  if (from_value != source_stream) return 0;
  try {
    return std::stoull(seq_value);
  } catch (const std::exception&) {
    return 0;
  }
}

std::string api_prefix_of(const ClusterConfig& cluster) {
  if (!cluster.nats.api_prefix.empty()) return cluster.nats.api_prefix;
  if (!cluster.nats.domain.empty()) return "$JS." + cluster.nats.domain + ".API";
  return "$JS.API";
}

Status Puller::open(natsConnection* conn, const ClusterConfig& cluster, const std::string& stream,
                    const std::string& consumer, int batch) {
  conn_ = conn;
  cluster_ = cluster.name;
  stream_ = stream;
  batch_ = std::max(1, batch);
  next_subject_ = api_prefix_of(cluster) + ".CONSUMER.MSG.NEXT." + stream + "." + consumer;
  natsInbox* inbox = nullptr;
  natsStatus s = natsInbox_Create(&inbox);
  if (s != NATS_OK) return Status::fatal("cannot create an inbox: " + error_text(s));
  inbox_ = inbox;
  natsInbox_Destroy(inbox);
  natsSubscription* sub = nullptr;
  s = natsConnection_SubscribeSync(&sub, conn_, inbox_.c_str());
  if (s != NATS_OK) return Status::retry("cannot subscribe for " + stream + ": " + error_text(s));
  natsSubscription_SetPendingLimits(sub, -1, -1);
  sub_.reset(sub);
  requests_.clear();
  return Status::ok();
}

Status Puller::request_more() {
  // Long-poll requests: the server answers as messages arrive, or with 408 at expiry.
  constexpr std::int64_t kExpiresNs = 10LL * 1000 * 1000 * 1000;
  while (requests_.size() < 2) {
    const std::string body = "{\"batch\":" + std::to_string(batch_) + ",\"expires\":" +
                             std::to_string(kExpiresNs) + "}";
    natsStatus s = natsConnection_PublishRequest(conn_, next_subject_.c_str(), inbox_.c_str(),
                                                 body.data(), static_cast<int>(body.size()));
    if (s != NATS_OK) return Status::retry("pull request on " + stream_ + ": " + error_text(s));
    requests_.push_back(batch_);
    last_activity_ = std::chrono::steady_clock::now();
  }
  return Status::ok();
}

Status Puller::next(std::size_t max, Duration wait, const std::function<void(natsMsg*)>& on_msg) {
  if (!sub_) return Status::retry("stream " + stream_ + " is not open");
  // Requests lost with a broken connection are never answered: forget them after their expiry.
  if (!requests_.empty() && std::chrono::steady_clock::now() - last_activity_ > std::chrono::seconds(12)) {
    requests_.clear();
  }
  Status st = request_more();
  if (!st.is_ok()) return st;
  bool first = true;
  std::size_t got = 0;
  while (got < max) {
    natsMsg* raw = nullptr;
    natsStatus s = natsSubscription_NextMsg(&raw, sub_.get(), first ? std::max<std::int64_t>(wait.count(), 0) : 0);
    if (s == NATS_TIMEOUT) break;
    if (s == NATS_NO_RESPONDERS) {
      requests_.clear();
      return Status::retry("JetStream of cluster " + cluster_ + " does not answer");
    }
    if (s != NATS_OK) return Status::retry("reading " + stream_ + ": " + error_text(s));
    Ptr<natsMsg> msg(raw);
    last_activity_ = std::chrono::steady_clock::now();
    if (natsMsg_GetReply(msg.get()) == nullptr) {
      // A control message: 100 heartbeat, 404/408 end of a request, 409 a problem.
      const char* status = nullptr;
      natsMsgHeader_Get(msg.get(), "Status", &status);
      const std::string code = status != nullptr ? status : "";
      if (code == "100") continue;
      if (!requests_.empty()) requests_.pop_front();
      const char* desc = nullptr;
      natsMsgHeader_Get(msg.get(), "Description", &desc);
      const std::string text = desc != nullptr ? desc : "";
      if (code == "409" && text.find("Consumer Deleted") != std::string::npos) {
        return Status::retry("consumer of " + stream_ + " was deleted");
      }
      if (!(st = request_more()).is_ok()) return st;
      continue;
    }
    first = false;
    ++got;
    if (!requests_.empty() && --requests_.front() <= 0) {
      requests_.pop_front();
      if (!(st = request_more()).is_ok()) return st;
    }
    on_msg(msg.get());
  }
  return Status::ok();
}

void Puller::close() {
  sub_.reset();
  requests_.clear();
}

std::string consumer_name_for(const std::string& mirror) {
  std::string out = "mqdr-";
  for (char c : mirror) {
    const bool bad = c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' ||
                     std::isspace(static_cast<unsigned char>(c)) != 0;
    out.push_back(bad ? '_' : c);
  }
  return out;
}

}  // namespace mqdr::nats
