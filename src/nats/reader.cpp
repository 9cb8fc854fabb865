#include "nats/reader.hpp"

#include "nats/source.hpp"

namespace mqdr::nats {

StreamReader::~StreamReader() {
  puller_.close();
  if (!consumer_.empty()) {
    jsErrCode code = static_cast<jsErrCode>(0);
    (void)js_DeleteConsumer(js_, stream_.c_str(), consumer_.c_str(), nullptr, &code);
  }
}

Status StreamReader::open(std::uint64_t from_seq) {
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.AckPolicy = js_AckNone;
  cc.InactiveThreshold = 60LL * 1000 * 1000 * 1000;
  if (from_seq > 1) {
    cc.DeliverPolicy = js_DeliverByStartSequence;
    cc.OptStartSeq = from_seq;
  }
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_AddConsumer(&ci, js_, stream_.c_str(), &cc, nullptr, &code);
  if (s != NATS_OK) {
    if (code == JSStreamNotFoundErr) return Status::fatal("stream " + stream_ + " does not exist");
    return Status::retry("cannot read stream " + stream_ + ": " + error_text(s, code));
  }
  consumer_ = ci->Name;
  jsConsumerInfo_Destroy(ci);
  return puller_.open(conn_, cluster_, stream_, consumer_, 512);
}

Status StreamReader::next(std::vector<StoredMessage>& out, int max, Duration wait) {
  return puller_.next(static_cast<std::size_t>(max), wait, [&](natsMsg* m) {
    auto meta = parse_ack_subject(natsMsg_GetReply(m));
    if (!meta) return;
    StoredMessage sm;
    sm.seq = meta->stream_seq;
    sm.time_ns = meta->timestamp_ns;
    sm.subject = natsMsg_GetSubject(m);
    sm.header_block = std::string(raw_header_block(m));
    sm.payload.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
    out.push_back(std::move(sm));
  });
}

std::vector<Header> original_headers(const std::vector<Header>& relayed) {
  std::vector<Header> out;
  for (const auto& h : relayed) {
    if (h.key == kMsgIdHeader || h.key == kExpectedLastMsgIdHeader || h.key == kSourceStreamHeader ||
        h.key == kSourceSeqHeader || h.key == kSourceTimeHeader || h.key == kOriginHeader) {
      continue;
    }
    if (h.key.rfind(kOrigHeaderPrefix, 0) == 0) {
      out.push_back(Header{h.key.substr(kOrigHeaderPrefix.size()), h.value});
    } else {
      out.push_back(h);
    }
  }
  return out;
}

}  // namespace mqdr::nats
