#include "kube_rules.h"

#include "knode/dataplane/iptables/rule_builder.h"

namespace knode::proxy {

namespace ipt = knode::iptables;
using R = ipt::RuleBuilder;
using namespace chains;

ipt::Rule jump_rule(const std::string& comment, const std::string& chain, uint16_t ctstate) {
  R r;
  if (ctstate) r.ctstate(ctstate);
  return r.comment(comment).jump(chain);
}

void kube_skeleton(ipt::DesiredTable& nat, ipt::DesiredTable& filter) {
  nat.table = "nat";
  nat.owned_prefixes = {kKubePrefix};
  filter.table = "filter";
  filter.owned_prefixes = {kKubePrefix};
  using ipt::JumpRule;
  nat.jumps = {
      {"PREROUTING", jump_rule("kubernetes service portals", kServices), JumpRule::kInsertFirst},
      {"OUTPUT", jump_rule("kubernetes service portals", kServices), JumpRule::kInsertFirst},
      {"POSTROUTING", jump_rule("kubernetes postrouting rules", kPostrouting), JumpRule::kInsertFirst},
  };
}

std::vector<ipt::Rule> mark_masq_chain(uint32_t mark) { return {R().to(ipt::MarkTarget::OrMark(mark))}; }

void append_masquerade(std::vector<ipt::Rule>& chain, uint32_t mark, bool random_fully) {
  chain.push_back(R().mark(mark, mark, true).to(ipt::Verdict::kReturn));
  chain.push_back(R().to(ipt::MarkTarget::XorMark(mark)));
  ipt::Masquerade masq;
  masq.random_fully = random_fully;
  chain.push_back(R().comment("kubernetes service traffic requiring SNAT").to(masq));
}

void append_forward_accepts(std::vector<ipt::Rule>& chain, uint32_t mark) {
  chain.push_back(R().comment("kubernetes forwarding rules").mark(mark, mark).to(ipt::Verdict::kAccept));
  chain.push_back(R().comment("kubernetes forwarding conntrack rule")
                      .ctstate(ipt::kCtRelated | ipt::kCtEstablished)
                      .to(ipt::Verdict::kAccept));
}

}  // namespace knode::proxy
