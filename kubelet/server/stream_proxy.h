// kubectl exec, attach and port-forward through the kubelet: the runtime answers CRI Exec
// (Attach, PortForward) with the URL of its own streaming server for that one session,
// and the kubelet passes the client's upgrade request there and then the upgraded
// connection (SPDY or WebSocket, whichever the client speaks; the kubelet does not look
// inside) both ways, as upstream's UpgradeAwareHandler does.
#pragma once

#include <chrono>
#include <string>

#include "knode/http/server.h"
#include "knode/status.h"

namespace knode::kubelet {

// Whether the request asks to upgrade its connection ("Connection: Upgrade" and an
// Upgrade header).
bool is_upgrade_request(const http::Request& request);

// Connects to `url` (http only: containerd's and CRI-O's streaming servers are plain HTTP
// on the loopback by default), sends it the request with the URL's path in place of the
// client's and without the client's Authorization, reads the answer's head, and hands the
// connection to `exchange`: a 101 becomes a tunnel carrying that head first; any other
// answer is relayed as a response. Blocking: connect, send and the head's read are bounded
// by `timeout`. An error means nothing was answered yet.
Status proxy_upgrade(const http::Request& request, const std::string& url, http::Exchange& exchange,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace knode::kubelet
