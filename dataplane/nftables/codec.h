// The netlink encoding of nf_tables objects (libmnl attribute writers), and a canonical
// byte form of the values that the reconciler compares and hashes.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "knode/dataplane/nftables.h"

namespace knode::nftables::codec {

// An anonymous set as a rule's lookup refers to it within one transaction.
struct AnonymousRef {
  std::string name;  // unique in the table ("__map17.5e2a9c01"), bound by name
  uint32_t id = 0;   // NFTA_SET_ID, unique in the transaction
};

// Attribute writers; `nlh` must have room (callers reserve kMaxMessage bytes).
inline constexpr size_t kMaxMessage = 64 * 1024;

void put_table(nlmsghdr* nlh, const Table& t);
void put_chain(nlmsghdr* nlh, const std::string& table, const Chain& c);
void put_rule(nlmsghdr* nlh, const std::string& table, std::string_view chain, const Rule& r,
              std::span<const AnonymousRef> anonymous);  // one ref per anonymous lookup, in order
// `id`: NFTA_SET_ID, which the kernel wants for every new set (anonymous: anonymous->id).
void put_set(nlmsghdr* nlh, const std::string& table, const SetSpec& s, const AnonymousRef* anonymous, uint32_t id);
// Appends elements while they fit in `room` bytes of message; returns how many it put.
size_t put_elements(nlmsghdr* nlh, const std::string& table, std::string_view set, const AnonymousRef* anonymous,
                    std::span<const Element> elements, size_t room);

// Canonical bytes: equal values give equal bytes, whatever order an anonymous set's
// elements came in and whatever the kernel's handles and counters are.
void canonical(Bytes& out, const Rule& r);
void canonical(Bytes& out, const Chain& c);
void canonical(Bytes& out, const SetSpec& s);
// An element's value: its data and notes (the key is the element's identity).
void canonical_value(Bytes& out, const Element& e);

// FNV-1a over bytes; chains and elements are compared by this digest.
uint64_t digest(std::string_view bytes);

}  // namespace knode::nftables::codec
