#pragma once
// What a failed certificate check means for an operator. The broker adapters (src/kafka,
// src/nats, src/rabbitmq) learn OpenSSL's verification result in different ways; they all turn it
// into the same sentence, naming the configuration key to look at. Header-only, no state; needs
// OpenSSL's headers only for the X509_V_ERR_* codes.

#include <openssl/x509_vfy.h>

#include <string>
#include <string_view>

namespace mqdr {

// "certificate verify failed: <OpenSSL's text> (<what to do>)". `code` is an X509_V_ERR_* value,
// `openssl_text` its X509_verify_cert_error_string(), `host` the name or address that was checked
// (may be empty). Never contains a secret: certificates are public.
inline std::string explain_certificate_error(long code, std::string_view openssl_text,
                                             std::string_view host) {
  std::string out = "certificate verify failed: ";
  out += openssl_text;
  switch (code) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      out += " (the server's certificate does not name '";
      out += host;
      out += "': connect with a name or address the certificate carries, set tls.server_name "
             "to one of them where the client supports it, or tls.verify_hostname: false)";
      break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      out += " (the server's certificate is not signed by a CA in tls.ca_file; set tls.ca_file to "
             "the CA that issued it)";
      break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      out += " (check the server's certificate dates and this machine's clock)";
      break;
    default:
      out += " (check tls.ca_file and the server's certificate)";
      break;
  }
  return out;
}

}  // namespace mqdr
