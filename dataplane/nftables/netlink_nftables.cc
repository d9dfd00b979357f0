// The nf_tables client over one NETLINK_NETFILTER socket: dumps parsed with libnftnl
// (decode.cc), transactions encoded with libmnl (codec.cc) into one batch.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include "knode/dataplane/nftables.h"
#include "knode/dataplane/nftables/print.h"
#include "nftables/codec.h"
#include "nftables/decode.h"

namespace knode::nftables {
namespace {

constexpr size_t kChunkSize = 8u << 20;   // a batch is a list of chunks; no message spans two
constexpr size_t kReceiveSize = 1u << 20;  // dumps hand over up to ~32 KiB per read; acks are small

uint16_t msg_type(uint16_t nft_msg) { return static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | nft_msg); }

nlmsghdr* put_header(char* buf, uint16_t type, uint16_t flags, uint32_t seq, uint8_t family, uint16_t res_id = 0) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = family;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(res_id);
  return nlh;
}

void put_str(nlmsghdr* nlh, uint16_t type, const std::string& s) { mnl_attr_put_strz(nlh, type, s.c_str()); }

class NetlinkNftables;

class NetlinkTransaction final : public Transaction {
 public:
  NetlinkTransaction(NetlinkNftables& owner, Family family, std::string table, std::optional<uint32_t> generation)
      : owner_(owner), family_(family), table_(std::move(table)), generation_(generation) {}

  void add_table(const Table& t) override {
    Table copy = t;
    copy.name = table_;
    nlmsghdr* nlh = start(NFT_MSG_NEWTABLE, NLM_F_CREATE);
    codec::put_table(nlh, copy);
    finish(nlh);
  }
  void delete_table() override {
    nlmsghdr* nlh = start(NFT_MSG_DELTABLE, 0);
    put_str(nlh, NFTA_TABLE_NAME, table_);
    finish(nlh);
  }
  void add_chain(const Chain& c) override {
    nlmsghdr* nlh = start(NFT_MSG_NEWCHAIN, NLM_F_CREATE);
    codec::put_chain(nlh, table_, c);
    finish(nlh);
  }
  void flush_chain(std::string_view chain) override {
    nlmsghdr* nlh = start(NFT_MSG_DELRULE, 0);
    put_str(nlh, NFTA_RULE_TABLE, table_);
    put_str(nlh, NFTA_RULE_CHAIN, std::string(chain));
    finish(nlh);
  }
  void delete_chain(std::string_view chain) override {
    nlmsghdr* nlh = start(NFT_MSG_DELCHAIN, 0);
    put_str(nlh, NFTA_CHAIN_TABLE, table_);
    put_str(nlh, NFTA_CHAIN_NAME, std::string(chain));
    finish(nlh);
  }
  void add_rule(std::string_view chain, const Rule& r) override;
  void delete_rule(std::string_view chain, uint64_t handle) override {
    nlmsghdr* nlh = start(NFT_MSG_DELRULE, 0);
    put_str(nlh, NFTA_RULE_TABLE, table_);
    put_str(nlh, NFTA_RULE_CHAIN, std::string(chain));
    mnl_attr_put_u64(nlh, NFTA_RULE_HANDLE, htobe64(handle));
    finish(nlh);
  }
  void add_set(const SetSpec& s) override;
  void flush_set(std::string_view set) override {
    nlmsghdr* nlh = start(NFT_MSG_DELSETELEM, 0);
    put_str(nlh, NFTA_SET_ELEM_LIST_TABLE, table_);
    put_str(nlh, NFTA_SET_ELEM_LIST_SET, std::string(set));
    finish(nlh);
  }
  void delete_set(std::string_view set) override {
    nlmsghdr* nlh = start(NFT_MSG_DELSET, 0);
    put_str(nlh, NFTA_SET_TABLE, table_);
    put_str(nlh, NFTA_SET_NAME, std::string(set));
    finish(nlh);
  }
  void add_elements(std::string_view set, std::span<const Element> elements) override {
    put_elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, set, nullptr, elements);
  }
  void delete_elements(std::string_view set, std::span<const Element> elements) override {
    put_elements(NFT_MSG_DELSETELEM, 0, set, nullptr, elements);
  }
  void phase(uint8_t p) override { phase_ = p < kPhases ? p : kPhases - 1; }
  size_t size() const override { return ops_; }
  Status commit() override;

 private:
  // A message at the end of the current phase's last chunk (a new chunk when it may not fit).
  nlmsghdr* start(uint16_t nft_msg, uint16_t flags) {
    auto& chunks = phases_[phase_];
    if (chunks.empty() || kChunkSize - chunks.back().used < codec::kMaxMessage) {
      chunks.push_back(Chunk{std::unique_ptr<char[]>(new char[kChunkSize]), 0});
    }
    char* at = chunks.back().data.get() + chunks.back().used;
    return put_header(at, msg_type(nft_msg), flags, 0, static_cast<uint8_t>(family_));
  }
  void finish(nlmsghdr* nlh) {
    phases_[phase_].back().used += NLMSG_ALIGN(nlh->nlmsg_len);
    ++ops_;
  }
  void put_elements(uint16_t nft_msg, uint16_t flags, std::string_view set, const codec::AnonymousRef* anonymous,
                    std::span<const Element> elements) {
    while (!elements.empty()) {
      nlmsghdr* nlh = start(nft_msg, flags);
      size_t n = codec::put_elements(nlh, table_, set, anonymous, elements, codec::kMaxMessage);
      finish(nlh);
      elements = elements.subspan(n);
    }
  }
  struct Chunk {
    std::unique_ptr<char[]> data;
    size_t used = 0;
  };
  std::string describe(const nlmsghdr* nlh) const;

  NetlinkNftables& owner_;
  Family family_;
  std::string table_;
  std::optional<uint32_t> generation_;
  std::vector<Chunk> phases_[kPhases];
  uint8_t phase_ = 0;
  size_t ops_ = 0;
  uint32_t next_set_id_ = 1;
};

class NetlinkNftables final : public Nftables {
 public:
  explicit NetlinkNftables(mnl_socket* sock)
      : sock_(sock), port_id_(mnl_socket_get_portid(sock)), seq_(static_cast<uint32_t>(time(nullptr))),
        buf_(new char[kReceiveSize]), anonymous_tag_(std::random_device{}()) {}
  ~NetlinkNftables() override { mnl_socket_close(sock_); }

  Result<uint32_t> generation() override {
    char buf[256];
    nlmsghdr* nlh = put_header(buf, msg_type(NFT_MSG_GETGEN), NLM_F_ACK, 0, AF_UNSPEC);
    uint32_t gen = 0;
    Status s = request(nlh, [&](const nlmsghdr* m) {
      if (NFNL_MSG_TYPE(m->nlmsg_type) == NFT_MSG_NEWGEN) gen = decode::generation(m);
    });
    if (!s.ok()) return s.Wrap("read the nftables ruleset generation");
    return gen;
  }

  Result<bool> list_table(Family family, const std::string& table, TableVisitor& visitor) override;

  std::unique_ptr<Transaction> begin(Family family, const std::string& table,
                                     std::optional<uint32_t> generation) override {
    return std::make_unique<NetlinkTransaction>(*this, family, table, generation);
  }

  // The key type of a set, for describing elements in errors (0: unknown).
  uint32_t key_type(const std::string& set) const {
    auto it = key_types_.find(set);
    return it == key_types_.end() ? 0 : it->second;
  }
  void note_set(const SetSpec& s) { key_types_[s.name] = s.key_type; }

  // A name for a new anonymous set, unique in the table. nft sends "__map%d" and lets
  // the kernel pick the number (a scan of every set in the table, with sscanf on each
  // name), and the rule then binds the set by its id (a walk of the transaction). A
  // concrete name, new for this process (a random tag) and this set (a serial), is bound
  // by name. (The kernel still walks the table's sets by name to create and to bind it.)
  std::string anonymous_name(bool map) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%u.%08x", map ? "__map" : "__set", anonymous_serial_++, anonymous_tag_);
    return buf;
  }

  Status send_batch(std::vector<iovec>& iov, size_t total, uint32_t end_seq, uint32_t base_seq,
                    const std::function<std::string(uint32_t seq)>& describe);
  uint32_t take_seqs(uint32_t n) {
    uint32_t base = seq_;
    seq_ += n;
    return base;
  }

 private:
  using OnMessage = std::function<void(const nlmsghdr*)>;
  // Sends a request and reads its answer (a dump or one reply plus the ACK).
  Status request(nlmsghdr* nlh, const OnMessage& on_message);

  mnl_socket* sock_;
  unsigned port_id_;
  uint32_t seq_;
  std::unique_ptr<char[]> buf_;
  uint32_t anonymous_tag_;
  uint32_t anonymous_serial_ = 0;
  size_t sndbuf_ = 0;
  std::map<std::string, uint32_t> key_types_;
};

struct Exchange {
  const std::function<void(const nlmsghdr*)>* on_message;
};

Status NetlinkNftables::request(nlmsghdr* nlh, const OnMessage& on_message) {
  nlh->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0) return Status::FromErrno("send", errno);
  Exchange ex{&on_message};
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_, buf_.get(), kReceiveSize);
    if (n < 0) return Status::FromErrno("receive", errno);
    mnl_cb_t ctl[NLMSG_MIN_TYPE] = {};
    ctl[NLMSG_NOOP] = [](const nlmsghdr*, void*) { return int(MNL_CB_OK); };
    ctl[NLMSG_DONE] = [](const nlmsghdr*, void*) { return int(MNL_CB_STOP); };
    ctl[NLMSG_ERROR] = [](const nlmsghdr* m, void*) {
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
      if (err->error == 0) return int(MNL_CB_STOP);
      errno = -err->error;
      return int(MNL_CB_ERROR);
    };
    ctl[NLMSG_OVERRUN] = [](const nlmsghdr*, void*) {
      errno = ENOSPC;
      return int(MNL_CB_ERROR);
    };
    int rc = mnl_cb_run2(
        buf_.get(), static_cast<size_t>(n), nlh->nlmsg_seq, port_id_,
        [](const nlmsghdr* m, void* data) {
          (*static_cast<Exchange*>(data)->on_message)(m);
          return int(MNL_CB_OK);
        },
        &ex, ctl, NLMSG_MIN_TYPE);
    if (rc == MNL_CB_ERROR) return Status::FromErrno("netlink", errno);
    if (rc == MNL_CB_STOP) return Status::Ok();
  }
}

Result<bool> NetlinkNftables::list_table(Family family, const std::string& table, TableVisitor& visitor) {
  const auto fam = static_cast<uint8_t>(family);
  const std::string where = std::string(family_name(family)) + " " + table;
  char req[1024];

  // The table itself (ENOENT: there is none).
  nlmsghdr* nlh = put_header(req, msg_type(NFT_MSG_GETTABLE), NLM_F_ACK, 0, fam);
  put_str(nlh, NFTA_TABLE_NAME, table);
  Table t;
  bool found = false;
  Status s = request(nlh, [&](const nlmsghdr* m) { found = decode::table(m, &t); });
  if (!s.ok()) {
    if (s.error_number() == ENOENT) return false;
    return s.Wrap("list table " + where);
  }
  if (!found) return Status::Error("list table " + where + ": the kernel's answer could not be parsed", EBADMSG);
  t.family = family;
  visitor.table(t);

  // Sets (named and anonymous) with their elements.
  std::vector<SetSpec> sets;
  nlh = put_header(req, msg_type(NFT_MSG_GETSET), NLM_F_DUMP, 0, fam);
  put_str(nlh, NFTA_SET_TABLE, table);
  bool parsed = true;
  s = request(nlh, [&](const nlmsghdr* m) {
    std::string tname;
    SetSpec spec;
    if (!decode::set(m, &tname, &spec)) {
      parsed = false;
      return;
    }
    if (tname == table) sets.push_back(std::move(spec));
  });
  if (!s.ok()) return s.Wrap("list the sets of table " + where);
  if (!parsed) return Status::Error("list the sets of table " + where + ": unparsable answer", EBADMSG);
  std::map<std::string, std::shared_ptr<const AnonymousSet>> anonymous;
  for (auto& spec : sets) {
    std::vector<Element> elements;
    nlh = put_header(req, msg_type(NFT_MSG_GETSETELEM), NLM_F_DUMP, 0, fam);
    put_str(nlh, NFTA_SET_ELEM_LIST_TABLE, table);
    put_str(nlh, NFTA_SET_ELEM_LIST_SET, spec.name);
    s = request(nlh, [&](const nlmsghdr* m) {
      std::string name;
      if (!decode::elements(m, &name, &elements)) parsed = false;
    });
    if (!s.ok()) return s.Wrap("list the elements of set " + spec.name + " in table " + where);
    if (!parsed) return Status::Error("list the elements of set " + spec.name + ": unparsable answer", EBADMSG);
    if (spec.is_anonymous()) {
      auto a = std::make_shared<AnonymousSet>();
      a->spec = spec;
      a->spec.name.clear();
      a->elements = std::move(elements);
      anonymous[spec.name] = std::move(a);
    } else {
      note_set(spec);
      visitor.set(spec, std::move(elements));
    }
  }

  // Chains, then the rules chain by chain (the kernel dumps them in its chain order).
  std::vector<Chain> chains;
  nlh = put_header(req, msg_type(NFT_MSG_GETCHAIN), NLM_F_DUMP, 0, fam);
  put_str(nlh, NFTA_CHAIN_TABLE, table);
  s = request(nlh, [&](const nlmsghdr* m) {
    std::string tname;
    Chain c;
    if (!decode::chain(m, &tname, &c)) {
      parsed = false;
      return;
    }
    if (tname == table) chains.push_back(std::move(c));
  });
  if (!s.ok()) return s.Wrap("list the chains of table " + where);
  if (!parsed) return Status::Error("list the chains of table " + where + ": unparsable answer", EBADMSG);
  // The rules one chain at a time: a dump of the whole table's rules is quadratic in the
  // kernel (each continuation walks the rules again from the first to find where it
  // stopped: 11.6 s at 10,000 Services here), a dump of one chain (table and chain set) is
  // answered from that chain alone.
  std::string unknown;
  for (const Chain& c : chains) {
    visitor.chain(c);
    nlh = put_header(req, msg_type(NFT_MSG_GETRULE), NLM_F_DUMP, 0, fam);
    put_str(nlh, NFTA_RULE_TABLE, table);
    put_str(nlh, NFTA_RULE_CHAIN, c.name);
    s = request(nlh, [&](const nlmsghdr* m) {
      std::string tname, chain;
      Rule r;
      if (!decode::rule(m, &tname, &chain, &r)) {
        if (unknown.empty()) unknown = c.name;
        parsed = false;
        return;
      }
      if (tname != table || chain != c.name) return;
      for (auto& e : r.exprs) {
        auto* l = std::get_if<Lookup>(&e);
        if (!l) continue;
        auto it = anonymous.find(l->set);
        if (it == anonymous.end()) continue;
        l->anonymous = it->second;
        l->set.clear();
      }
      visitor.rule(chain, std::move(r));
    });
    // (A chain deleted since the chain dump reads as empty, or ENOENT on older kernels;
    // the commit, made against the generation read before, is refused then anyway.)
    if (!s.ok() && s.error_number() != ENOENT) return s.Wrap("list the rules of chain " + c.name + " in table " + where);
    if (!parsed) {
      return Status::Error("list the rules of table " + where + ": chain " + unknown +
                               " holds an expression knode does not know",
                           EBADMSG);
    }
  }
  return true;
}

Status NetlinkNftables::send_batch(std::vector<iovec>& iov, size_t total, uint32_t end_seq, uint32_t base_seq,
                                   const std::function<std::string(uint32_t)>& describe) {
  const int fd = mnl_socket_get_fd(sock_);
  // The whole batch is one message to the kernel: the send buffer must hold it.
  if (total + 4096 > sndbuf_) {
    int size = static_cast<int>(std::min<size_t>(total + 65536, 0x3fffffff));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
    sndbuf_ = static_cast<size_t>(size);
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  msghdr msg{};
  msg.msg_name = &kernel;
  msg.msg_namelen = sizeof kernel;
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  if (sendmsg(fd, &msg, 0) < 0) return Status::FromErrno("send the nftables batch", errno);

  // The kernel answered while we were in sendmsg: one ACK for the batch's end on success,
  // the errors of the refused operations otherwise.
  bool acked = false, lost = false;
  Status first_error;
  for (;;) {
    ssize_t n = recv(fd, buf_.get(), kReceiveSize, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        lost = true;
        continue;
      }
      if (errno == EINTR) continue;
      return Status::FromErrno("read the answer to the nftables batch", errno);
    }
    int left = static_cast<int>(n);
    for (auto* m = reinterpret_cast<const nlmsghdr*>(buf_.get()); mnl_nlmsg_ok(m, left);
         m = mnl_nlmsg_next(m, &left)) {
      if (m->nlmsg_type != NLMSG_ERROR) continue;
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
      if (err->msg.nlmsg_seq == end_seq && err->error == 0) {
        acked = true;
        continue;
      }
      if (err->error == 0 || !first_error.ok()) continue;
      const int code = -err->error;
      if (err->msg.nlmsg_seq == base_seq) {
        first_error = Status::FromErrno(code == ERESTART ? "commit: the ruleset changed since it was read"
                                                         : "commit the nftables batch",
                                        code);
      } else {
        first_error = Status::FromErrno(describe(err->msg.nlmsg_seq), code);
      }
    }
  }
  if (!first_error.ok()) return first_error;
  if (acked) return Status::Ok();
  if (lost) return Status::Error("the nftables batch failed; the kernel's errors overflowed the socket", ENOBUFS);
  return Status::Error("the kernel did not acknowledge the nftables batch", EPROTO);
}

void NetlinkTransaction::add_rule(std::string_view chain, const Rule& r) {
  // Anonymous sets first: the set, its elements, then the rule that binds them.
  std::vector<codec::AnonymousRef> refs;
  for (const auto& e : r.exprs) {
    const auto* l = std::get_if<Lookup>(&e);
    if (!l || !l->anonymous) continue;
    codec::AnonymousRef ref{owner_.anonymous_name(l->anonymous->spec.is_map()), next_set_id_++};
    nlmsghdr* nlh = start(NFT_MSG_NEWSET, NLM_F_CREATE);
    codec::put_set(nlh, table_, l->anonymous->spec, &ref, ref.id);
    finish(nlh);
    put_elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, "", &ref, l->anonymous->elements);
    refs.push_back(std::move(ref));
  }
  nlmsghdr* nlh = start(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
  codec::put_rule(nlh, table_, chain, r, refs);
  finish(nlh);
}

void NetlinkTransaction::add_set(const SetSpec& s) {
  nlmsghdr* nlh = start(NFT_MSG_NEWSET, NLM_F_CREATE);
  codec::put_set(nlh, table_, s, nullptr, next_set_id_++);
  finish(nlh);
  owner_.note_set(s);
}

Status NetlinkTransaction::commit() {
  if (ops_ == 0) return Status::Ok();
  // Number the messages in sending order: begin = base, the operations base + 1 ...,
  // end = base + ops + 1; remember where each is, to name the one the kernel refuses.
  const uint32_t n = static_cast<uint32_t>(ops_);
  const uint32_t base = owner_.take_seqs(n + 2);
  std::vector<const nlmsghdr*> messages;
  messages.reserve(n);
  char begin_buf[256], end_buf[256];
  nlmsghdr* begin = put_header(begin_buf, NFNL_MSG_BATCH_BEGIN, 0, base, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  if (generation_) mnl_attr_put_u32(begin, NFNL_BATCH_GENID, htonl(*generation_));
  nlmsghdr* end = put_header(end_buf, NFNL_MSG_BATCH_END, NLM_F_ACK, base + n + 1, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  std::vector<iovec> iov;
  iov.push_back({begin, begin->nlmsg_len});
  size_t total = begin->nlmsg_len + end->nlmsg_len;
  for (auto& chunks : phases_) {
    for (auto& c : chunks) {
      for (size_t off = 0; off < c.used;) {
        auto* nlh = reinterpret_cast<nlmsghdr*>(c.data.get() + off);
        nlh->nlmsg_seq = base + 1 + static_cast<uint32_t>(messages.size());
        messages.push_back(nlh);
        off += NLMSG_ALIGN(nlh->nlmsg_len);
      }
      iov.push_back({c.data.get(), c.used});
      total += c.used;
    }
  }
  iov.push_back({end, end->nlmsg_len});
  Status s = owner_.send_batch(iov, total, base + n + 1, base, [&](uint32_t seq) {
    if (seq <= base || seq > base + messages.size()) return std::string("an operation of the batch");
    return describe(messages[seq - base - 1]);
  });
  for (auto& chunks : phases_) chunks.clear();
  ops_ = 0;
  return s;
}

std::string NetlinkTransaction::describe(const nlmsghdr* nlh) const {
  const std::string where = std::string(family_name(family_)) + " " + table_;
  std::string tname, name;
  switch (NFNL_MSG_TYPE(nlh->nlmsg_type)) {
    case NFT_MSG_NEWTABLE: return "add table " + where;
    case NFT_MSG_DELTABLE: return "delete table " + where;
    case NFT_MSG_NEWCHAIN:
    case NFT_MSG_DELCHAIN: {
      Chain c;
      decode::chain(nlh, &tname, &c);
      return (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWCHAIN ? "add chain " : "delete chain ") + where + " " +
             c.name;
    }
    case NFT_MSG_NEWRULE: {
      Rule r;
      std::string chain;
      if (!decode::rule(nlh, &tname, &chain, &r)) return "add rule " + where + " " + chain;
      return "add rule " + where + " " + chain + ": " + print_rule(r);
    }
    case NFT_MSG_DELRULE: {
      Rule r;
      std::string chain;
      decode::rule(nlh, &tname, &chain, &r);
      if (r.handle == 0) return "flush chain " + where + " " + chain;
      return "delete rule " + where + " " + chain + " handle " + std::to_string(r.handle);
    }
    case NFT_MSG_NEWSET:
    case NFT_MSG_DELSET: {
      SetSpec spec;
      decode::set(nlh, &tname, &spec);
      return (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWSET ? "add set " : "delete set ") + where + " " +
             spec.name;
    }
    case NFT_MSG_NEWSETELEM:
    case NFT_MSG_DELSETELEM: {
      std::vector<Element> elements;
      decode::elements(nlh, &name, &elements);
      const bool add = NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWSETELEM;
      if (!add && elements.empty()) return "flush set " + where + " " + name;
      SetSpec spec;
      spec.key_type = owner_.key_type(name);
      std::string list;
      for (size_t i = 0; i < elements.size() && i < 3; ++i) {
        list += (i ? ", " : "") + (spec.key_type ? print_key(elements[i].key, spec.key_type, 0)
                                                 : print_key(elements[i].key, 0, 0));
      }
      if (elements.size() > 3) list += ", ... (" + std::to_string(elements.size()) + " elements)";
      return std::string(add ? "add element " : "delete element ") + where + " " + name + " { " + list + " }";
    }
    default: return "an operation of the batch";
  }
}

}  // namespace

Result<NftablesPtr> open_netlink_nftables() {
  mnl_socket* sock = mnl_socket_open(NETLINK_NETFILTER);
  if (sock == nullptr) return Status::FromErrno("open a netfilter netlink socket", errno);
  if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(sock);
    return Status::FromErrno("bind a netfilter netlink socket", err);
  }
  int one = 1;
  // Errors echo only the refused message's header (its sequence number names it).
  mnl_socket_setsockopt(sock, NETLINK_CAP_ACK, &one, sizeof one);
  int rcv = 4 << 20;
  if (setsockopt(mnl_socket_get_fd(sock), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0) {
    setsockopt(mnl_socket_get_fd(sock), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  }
  return NftablesPtr(new NetlinkNftables(sock));
}

}  // namespace knode::nftables
