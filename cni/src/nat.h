// knode-cni's NAT rules in the nat table, all in chains it owns (prefix KNODE-CNI-):
//   POSTROUTING -> KNODE-CNI-POSTROUTING: masquerade of marked hairpin traffic, and per
//                  network with ipMasq "-s <subnet> -j KNODE-CNI-MASQ-<hash>" whose chain
//                  returns for the subnet itself and multicast, masquerades the rest;
//   PREROUTING, OUTPUT (dst-type LOCAL) -> KNODE-CNI-HOSTPORTS: per attachment with
//                  port mappings a jump to KNODE-CNI-DN-<hash>, which marks hairpin
//                  traffic from the pod subnet and DNATs each hostPort to the pod.
// Changes touch only the chains of one network or one attachment; rules of other
// attachments are read back and kept.
#pragma once

#include <vector>

#include "knode/cni/config.h"
#include "knode/cni/error.h"
#include "knode/cni/result.h"

namespace knode::cni {


Status ensure_masquerade(const NetConf& conf, const std::vector<ResultIp>& ips);
Status add_port_mappings(const NetConf& conf, const Attachment& att, const std::vector<ResultIp>& ips);
Status remove_port_mappings(const NetConf& conf, const Attachment& att);
Status check_nat(const NetConf& conf, const Attachment& att, const std::vector<ResultIp>& ips);
// Removes the port mapping chains of every attachment of this network not in `valid`.
Status gc_port_mappings(const NetConf& conf, const std::vector<Attachment>& valid);

}  // namespace knode::cni
