#include <linux/netfilter/nf_tables.h>

#include <algorithm>

#include "knode/dataplane/nftables.h"

namespace knode::nftables {

const char* family_name(Family f) {
  switch (f) {
    case Family::kIPv4: return "ip";
    case Family::kIPv6: return "ip6";
    case Family::kInet: return "inet";
  }
  return "?";
}

std::string Verdict::str() const {
  switch (code) {
    case Code::kAccept: return "accept";
    case Code::kDrop: return "drop";
    case Code::kReturn: return "return";
    case Code::kContinue: return "continue";
    case Code::kBreak: return "break";
    case Code::kJump: return "jump " + chain;
    case Code::kGoto: return "goto " + chain;
  }
  return "verdict " + std::to_string(static_cast<int32_t>(code));
}

bool SetSpec::is_map() const { return (flags & NFT_SET_MAP) != 0; }
bool SetSpec::is_anonymous() const { return (flags & NFT_SET_ANONYMOUS) != 0; }

bool AnonymousSet::operator==(const AnonymousSet& o) const {
  if (!(spec == o.spec) || elements.size() != o.elements.size()) return false;
  auto sorted = [](std::vector<Element> v) {
    std::sort(v.begin(), v.end(), [](const Element& a, const Element& b) {
      return a.key != b.key ? a.key < b.key : a.flags < b.flags;
    });
    return v;
  };
  return sorted(elements) == sorted(o.elements);
}

bool Lookup::operator==(const Lookup& o) const {
  if (sreg != o.sreg || dreg != o.dreg || invert != o.invert || set != o.set) return false;
  if (!anonymous || !o.anonymous) return !anonymous && !o.anonymous;
  return *anonymous == *o.anonymous;
}

const ChainContent* TableContent::find_chain(std::string_view name) const {
  for (const auto& c : chains) {
    if (c.chain.name == name) return &c;
  }
  return nullptr;
}

const SetContent* TableContent::find_set(std::string_view name) const {
  for (const auto& s : sets) {
    if (s.spec.name == name) return &s;
  }
  return nullptr;
}

namespace {

class Collect final : public TableVisitor {
 public:
  explicit Collect(TableContent* out) : out_(out) {}
  void table(const Table& t) override { out_->table = t; }
  void set(const SetSpec& s, std::vector<Element>&& elements) override {
    out_->sets.push_back(SetContent{s, std::move(elements)});
  }
  void chain(const Chain& c) override { out_->chains.push_back(ChainContent{c, {}}); }
  void rule(const std::string& chain, Rule&& r) override {
    if (out_->chains.empty() || out_->chains.back().chain.name != chain) {
      for (auto& c : out_->chains) {
        if (c.chain.name == chain) {
          c.rules.push_back(std::move(r));
          return;
        }
      }
      return;
    }
    out_->chains.back().rules.push_back(std::move(r));
  }

 private:
  TableContent* out_;
};

}  // namespace

Result<std::optional<TableContent>> read_table(Nftables& nft, Family family, const std::string& table) {
  TableContent content;
  Collect collect(&content);
  auto found = nft.list_table(family, table, collect);
  if (!found.ok()) return found.status();
  if (!*found) return std::optional<TableContent>();
  return std::optional<TableContent>(std::move(content));
}

}  // namespace knode::nftables
