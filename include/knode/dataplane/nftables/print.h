// nf_tables values printed the way nft 1.0.x prints them: `nft list table` output, one
// rule as a line of it, and the `nft -f` script that makes the same table. The printer
// knows the statements exprs.h builds; an expression sequence it does not recognise is
// printed as its raw expressions in brackets, so it never prints something misleading.
#pragma once

#include <string>
#include <string_view>

#include "knode/dataplane/nftables.h"

namespace knode::nftables {

// "ip daddr . meta l4proto . th dport vmap @service-ips", with ` comment "..."`.
std::string print_rule(const Rule& rule);
// A key of a set whose (possibly concatenated) datatype is `key_type`: "10.0.0.1 . tcp . 80".
std::string print_key(std::string_view key, uint32_t key_type, uint32_t key_len);
// "10.0.0.1 . tcp . 80 comment \"x\" : goto chain".
std::string print_element(const Element& e, const SetSpec& set);
// "type ipv4_addr . inet_proto . inet_service : verdict"'s right-hand side for one set.
std::string print_set_type(const SetSpec& set);
// The whole table as `nft list table <family> <name>` prints it.
std::string print_table(const TableContent& table);
// An `nft -f` script that creates the same table ("add table ...", "add chain ...",
// "add rule ...", "add element ..."): what a program driving the nft binary would write.
std::string nft_script(const TableContent& table);

}  // namespace knode::nftables
