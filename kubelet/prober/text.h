// The few pieces of Go formatting that upstream's probe and hook messages are made of, so
// that knode's read the same: %q quoting, time.Duration, errno text, a pod's name.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace knode::kubelet::prober {

// Go's %q of a string: double-quoted, with \" \\ \n \r \t and other control bytes escaped.
std::string go_quote(std::string_view s);
// Go's %v of a []string: "[a b c]".
std::string go_list(const std::vector<std::string>& items);
// Go's time.Duration String() for whole seconds: "1s", "1m30s", "1h0m0s".
std::string go_duration(std::chrono::seconds d);
// Go's text for an errno, e.g. "connection refused" (glibc's, first letter lowered).
std::string errno_text(int err);
// net.JoinHostPort: "10.0.0.1:80", "[fd00::1]:80".
std::string join_host_port(std::string_view host, int port);
// The pod as upstream's format.Pod names it in messages: "name_namespace(uid)".
std::string format_pod(std::string_view name, std::string_view ns, std::string_view uid);

}  // namespace knode::kubelet::prober
