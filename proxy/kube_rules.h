// What kube-proxy's iptables and IPVS modes share in the nat and filter tables: the
// chain names both use, the masquerade mark chains, the forwarding accepts and the nat
// hooks. Each mode's own layout is in proxy/iptables/service_rules.h and
// proxy/ipvs/companion.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "knode/dataplane/iptables/reconciler.h"
#include "knode/dataplane/iptables/rule.h"

namespace knode::proxy {

inline constexpr const char* kKubePrefix = "KUBE-";

// The chains both modes have.
namespace chains {
inline constexpr const char *kServices = "KUBE-SERVICES", *kPostrouting = "KUBE-POSTROUTING",
                            *kMarkMasq = "KUBE-MARK-MASQ", *kForward = "KUBE-FORWARD",
                            *kProxyFirewall = "KUBE-PROXY-FIREWALL";
}  // namespace chains

// "-m comment --comment C [-m conntrack --ctstate S] -j CHAIN", for the built-in hooks.
iptables::Rule jump_rule(const std::string& comment, const std::string& chain, uint16_t ctstate = 0);

// Empty nat and filter tables owning every KUBE-* chain, with the nat hooks both modes
// install (PREROUTING and OUTPUT -> KUBE-SERVICES, POSTROUTING -> KUBE-POSTROUTING).
// Each mode adds its filter hooks.
void kube_skeleton(iptables::DesiredTable& nat, iptables::DesiredTable& filter);

// KUBE-MARK-MASQ: set the masquerade mark.
std::vector<iptables::Rule> mark_masq_chain(uint32_t mark);
// The end of KUBE-POSTROUTING: leave unmarked packets, clear the mark, masquerade.
void append_masquerade(std::vector<iptables::Rule>& chain, uint32_t mark, bool random_fully);
// KUBE-FORWARD's accepts: marked traffic, and replies of tracked connections.
void append_forward_accepts(std::vector<iptables::Rule>& chain, uint32_t mark);

}  // namespace knode::proxy
