// What the HTTP server does with a parsed request before and around a plain handler, in
// functions of their own so the request fuzz target (tests/fuzz/http_request.cc) runs the
// server's own code, not a copy: the http::Request a handler sees, and the answer for an
// exact-path handler (404 without one, 405 for a method other than GET or HEAD, 500 when
// the handler throws).
#pragma once

#include <boost/beast/http.hpp>
#include <optional>
#include <string>

#include "knode/http/types.h"

namespace knode::http::detail {

Request make_request(boost::beast::http::request<boost::beast::http::string_body>&& req, std::string remote_address,
                     bool tls, std::optional<PeerCertificate> peer);

// The answer for an exact-path (or fallback) handler; nullptr: no handler for the path.
Response answer_plain(const Handler* handler, const Request& r, boost::beast::http::verb method);

}  // namespace knode::http::detail
