// Fuzzes the decoding of nf_tables netlink dumps, as NetlinkNftables reads a table
// (dataplane/nftables/netlink_nftables.cc): nftables::decode::table, set, elements, chain,
// rule (libnftnl's nlmsg parsers, then knode's mapping of every expression: payload,
// meta, cmp, bitwise, ct, fib, numgen, immediate, lookup, dynset, nat, masq, reject,
// counter, and the userdata notes) and generation, on every message; what decodes is
// gathered into a TableContent and printed as `nft list table` and as an `nft -f` script
// (nftables::print_table, nft_script, print_rule, print_element), as `knode` shows it.
//
// Input: a stream of netlink messages (nlmsghdr + nfgenmsg + attributes) walked with
// mnl_nlmsg_ok / mnl_nlmsg_next; each goes to the decoder of its message type, as the
// client dispatches them. Each message is copied so that it ends at a PROT_NONE page,
// since libnftnl and libmnl are not built with the sanitizers. Errors are `false`
// returns: nothing is caught here.
//
// libnftnl does not return an error for an attribute that fails its own validation (a
// wrong length for the attribute's type): it prints "nf_tables kernel ABI is broken" and
// calls exit(1), so the daemon would end there. decode checks every attribute libnftnl
// validates before handing a message over (decode.cc, valid_message), so an exit() now
// means a gap in those checks (expressions knode does not map, inside sets and elements,
// are left to libnftnl). To keep fuzzing past one all the same, this file
// defines exit(): while a decoder runs, an exit() call jumps back here (siglongjmp) and
// the message counts as refused; the objects the skipped frames owned are leaked, with
// LeakSanitizer told to ignore allocations made meanwhile (a few hundred bytes per refused
// message). Everywhere else exit() is libc's. Define KNODE_FUZZ_NFT_EXIT_IS_CRASH to let
// such an exit() end the run instead (libFuzzer then reports "fuzz target exited").
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <dlfcn.h>
#include <setjmp.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "knode/dataplane/nftables.h"
#include "knode/dataplane/nftables/print.h"
#include "nftables/decode.h"  // dataplane/ (private to knode_nftables)

extern "C" void __lsan_disable() __attribute__((weak));
extern "C" void __lsan_enable() __attribute__((weak));

namespace {

sigjmp_buf g_exit_jump;
volatile bool g_exit_armed = false;

}  // namespace

#ifndef KNODE_FUZZ_NFT_EXIT_IS_CRASH
extern "C" __attribute__((__noreturn__)) void exit(int status) noexcept {
  if (g_exit_armed) {
    g_exit_armed = false;
    siglongjmp(g_exit_jump, 1);
  }
  using ExitFn = void (*)(int);
  static const auto real_exit = reinterpret_cast<ExitFn>(::dlsym(RTLD_NEXT, "exit"));
  if (real_exit != nullptr) real_exit(status);
  ::_exit(status);
}
#endif

namespace {

namespace nft = knode::nftables;

// Runs one decoder; false when it refused the message, or when libnftnl would have
// exited (see above).
template <typename Fn>
bool guarded_decode(Fn&& fn) {
  if (__lsan_disable) __lsan_disable();
  bool ok = false;
  if (sigsetjmp(g_exit_jump, 0) == 0) {
    g_exit_armed = true;
    ok = fn();
    g_exit_armed = false;
  } else {
    ok = false;
  }
  if (__lsan_enable) __lsan_enable();
  return ok;
}

knode::fuzz::GuardedBuffer& guarded() {
  static knode::fuzz::GuardedBuffer buf(1 << 20);
  return buf;
}

void one_message(const nlmsghdr* nlh, nft::TableContent& content) {
  std::string table_name, chain_name, set_name;
  if (nlh->nlmsg_type < NLMSG_MIN_TYPE) return;  // NLMSG_DONE/ERROR: the socket's, not the decoders'
  switch (NFNL_MSG_TYPE(nlh->nlmsg_type)) {
    case NFT_MSG_NEWTABLE: {
      nft::Table t;
      if (guarded_decode([&] { return nft::decode::table(nlh, &t); })) content.table = t;
      break;
    }
    case NFT_MSG_NEWSET: {
      nft::SetSpec spec;
      if (guarded_decode([&] { return nft::decode::set(nlh, &table_name, &spec); })) {
        (void)spec.is_map();
        (void)spec.is_anonymous();
        if (content.sets.size() < 16) content.sets.push_back(nft::SetContent{spec, {}});
      }
      break;
    }
    case NFT_MSG_NEWSETELEM: {
      std::vector<nft::Element> elements;
      if (guarded_decode([&] { return nft::decode::elements(nlh, &set_name, &elements); })) {
        for (auto& s : content.sets) {
          if (s.spec.name != set_name) continue;
          for (auto& e : elements) {
            (void)nft::print_element(e, s.spec);
            if (s.elements.size() < 256) s.elements.push_back(e);
          }
        }
      }
      break;
    }
    case NFT_MSG_NEWCHAIN: {
      nft::Chain c;
      if (guarded_decode([&] { return nft::decode::chain(nlh, &table_name, &c); })) {
        if (content.chains.size() < 16) content.chains.push_back(nft::ChainContent{c, {}});
      }
      break;
    }
    case NFT_MSG_NEWRULE: {
      nft::Rule r;
      if (guarded_decode([&] { return nft::decode::rule(nlh, &table_name, &chain_name, &r); })) {
        (void)nft::print_rule(r);
        for (auto& ch : content.chains) {
          if (ch.chain.name == chain_name && ch.rules.size() < 64) ch.rules.push_back(r);
        }
      }
      break;
    }
    case NFT_MSG_NEWGEN:
      (void)guarded_decode([&] { return nft::decode::generation(nlh) != 0; });
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint32_t> words((size + 3) / 4);  // 4-byte aligned, as a receive buffer
  if (size != 0) std::memcpy(words.data(), data, size);
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(words.data());
  int len = static_cast<int>(size);
  nft::TableContent content;
  // mnl_nlmsg_ok compares nlmsg_len with len as an int: a length over 2 GiB passes it (the
  // kernel never sends one), so it is checked as unsigned too.
  for (int n = 0; mnl_nlmsg_ok(nlh, len) && nlh->nlmsg_len <= static_cast<uint32_t>(len) && n < 64; ++n, nlh = mnl_nlmsg_next(nlh, &len)) {
    const void* copy = guarded().place(nlh, nlh->nlmsg_len);
    if (copy == nullptr) continue;
    one_message(static_cast<const nlmsghdr*>(copy), content);
  }
  (void)nft::print_table(content);
  (void)nft::nft_script(content);
  return 0;
}
