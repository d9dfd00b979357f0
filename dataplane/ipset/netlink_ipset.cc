// Ipset over nfnetlink (NFNL_SUBSYS_IPSET), speaking the protocol the ipset tool speaks.
#include <linux/netfilter.h>
#include <linux/netfilter/ipset/ip_set.h>

#include <map>

#include "ipset/codec.h"
#include "ipset/nfnl_socket.h"
#include "knode/dataplane/ipset.h"

namespace knode::ipset {

namespace {

class NetlinkIpset final : public Ipset {
 public:
  explicit NetlinkIpset(std::unique_ptr<NfnlSocket> sock) : sock_(std::move(sock)) {}

  bool is_available() override {
    codec::Request req(IPSET_CMD_PROTOCOL, 0, NFPROTO_UNSPEC);
    return sock_->transact(req.header()) == 0;
  }

  Status create_set(const SetSpec& spec, bool exist_ok) override {
    const std::string what = "create ipset " + spec.name + " (" + to_string(spec.type) + ")";
    auto rev = revision(spec);
    if (!rev.ok()) return rev.status().Wrap(what);
    codec::Request req(IPSET_CMD_CREATE, exist_ok ? 0 : NLM_F_EXCL, codec::nfproto_of(spec));
    Status st = req.put_create(spec, *rev);
    if (!st.ok()) return st;
    st = run(what, req, spec.type);
    if (st.ok()) types_[spec.name] = spec.type;
    return st;
  }

  Status destroy_set(const std::string& name) override {
    codec::Request req(IPSET_CMD_DESTROY, 0, NFPROTO_UNSPEC);
    req.put_setname(name);
    Status st = run("destroy ipset " + name, req, std::nullopt);
    if (st.ok()) types_.erase(name);
    return st;
  }

  Status flush_set(const std::string& name) override {
    codec::Request req(IPSET_CMD_FLUSH, 0, NFPROTO_UNSPEC);
    req.put_setname(name);
    return run("flush ipset " + name, req, std::nullopt);
  }

  Result<std::vector<std::string>> list_set_names() override {
    codec::Request req(IPSET_CMD_LIST, NLM_F_DUMP, NFPROTO_UNSPEC);
    req.put_flags(IPSET_FLAG_LIST_SETNAME);
    std::vector<std::string> names;
    Status st = run("list ipsets", req, std::nullopt, [&](const nlmsghdr* nlh) {
      auto chunk = codec::parse_list_reply(nlh, std::nullopt);
      if (!chunk.ok()) return -EPROTO;
      if (names.empty() || names.back() != chunk->name) names.push_back(chunk->name);
      return 0;
    });
    if (!st.ok()) return st;
    return names;
  }

  Result<Set> list_set(const std::string& name) override {
    codec::Request req(IPSET_CMD_LIST, NLM_F_DUMP, NFPROTO_UNSPEC);
    req.put_setname(name);
    Set set;
    std::optional<SetType> type;
    Status parse_error;
    Status st = run("list ipset " + name, req, std::nullopt, [&](const nlmsghdr* nlh) {
      auto chunk = codec::parse_list_reply(nlh, type);
      if (!chunk.ok()) {
        parse_error = chunk.status();
        return -EPROTO;
      }
      if (chunk->header) {
        type = chunk->header->type;
        set.spec = *chunk->header;
        set.references = chunk->references;
      }
      set.entries.insert(set.entries.end(), chunk->entries.begin(), chunk->entries.end());
      return 0;
    });
    if (!parse_error.ok()) return parse_error.Wrap("list ipset " + name);
    if (!st.ok()) return st;
    if (!type) return Status::Error("list ipset " + name + ": no header in the reply", EPROTO);
    types_[name] = *type;
    return set;
  }

  Status add_entry(const std::string& set, const Entry& e, bool exist_ok) override {
    return adt(IPSET_CMD_ADD, "add", "to", set, e, exist_ok);
  }

  Status del_entry(const std::string& set, const Entry& e, bool missing_ok) override {
    return adt(IPSET_CMD_DEL, "delete", "from", set, e, missing_ok);
  }

  Status add_entries(const std::string& set, const std::vector<Entry>& entries,
                     bool exist_ok) override {
    return batch(IPSET_CMD_ADD, "add", "to", set, entries, exist_ok);
  }

  Status del_entries(const std::string& set, const std::vector<Entry>& entries,
                     bool missing_ok) override {
    return batch(IPSET_CMD_DEL, "delete", "from", set, entries, missing_ok);
  }

  Result<bool> test_entry(const std::string& set, const Entry& e) override {
    Status st = adt(IPSET_CMD_TEST, "test", "in", set, e, false);
    if (st.ok()) return true;
    if (st.error_number() == IPSET_ERR_EXIST) return false;
    return st;
  }

 private:
  using ReplyFn = NfnlSocket::ReplyFn;

  Status run(const std::string& what, codec::Request& req, std::optional<SetType> type,
             const ReplyFn& on_reply = nullptr) {
    int rc = sock_->transact(req.header(), on_reply);
    if (rc == 0) return Status::Ok();
    return Status::Error(what + ": " + codec::error_text(-rc, req.cmd(), type), -rc);
  }

  Status adt(uint8_t cmd, const char* verb, const char* prep, const std::string& set,
             const Entry& e, bool exist_ok) {
    auto type = type_of(set);
    if (!type.ok()) return type.status().Wrap(std::string(verb) + " entry " + prep + " ipset " + set);
    const std::string what = std::string(verb) + " " + e.str(*type) + " " + prep + " ipset " + set;
    codec::Request req(cmd, exist_ok ? 0 : NLM_F_EXCL, NFPROTO_UNSPEC);
    req.put_setname(set);
    Status st = req.put_entry(*type, e);
    if (!st.ok()) return st.Wrap(what);
    return run(what, req, *type);
  }

  // Entries in messages of up to 64 KiB, numbered so a refusal names its entry.
  Status batch(uint8_t cmd, const char* verb, const char* prep, const std::string& set,
               const std::vector<Entry>& entries, bool exist_ok) {
    if (entries.empty()) return Status::Ok();
    auto type = type_of(set);
    if (!type.ok()) {
      return type.status().Wrap(std::string(verb) + " entries " + prep + " ipset " + set);
    }
    constexpr size_t kBatchBytes = 64 * 1024;
    for (size_t next = 0; next < entries.size();) {
      codec::Request req(cmd, exist_ok ? 0 : NLM_F_EXCL, NFPROTO_UNSPEC, kBatchBytes);
      req.put_setname(set);
      auto put = req.put_entries(*type, entries, next);
      if (!put.ok()) return put.status().Wrap(std::string(verb) + " entries " + prep + " ipset " + set);
      uint32_t lineno = 0;
      int rc = sock_->transact(req.header(), nullptr, &lineno);
      if (rc != 0) {
        std::string what = std::string(verb) + " ";
        if (lineno >= 1 && lineno <= entries.size()) {
          what += entries[lineno - 1].str(*type);
        } else {
          what += std::to_string(*put) + " entries";
        }
        return Status::Error(what + " " + prep + " ipset " + set + ": " +
                                 codec::error_text(-rc, cmd, *type),
                             -rc);
      }
      next += *put;
    }
    return Status::Ok();
  }

  // The set's type decides which attributes an entry carries: ask the kernel once.
  Result<SetType> type_of(const std::string& name) {
    auto it = types_.find(name);
    if (it != types_.end()) return it->second;
    codec::Request req(IPSET_CMD_HEADER, 0, NFPROTO_UNSPEC);
    req.put_setname(name);
    std::optional<SetType> type;
    Status st = run("get header of ipset " + name, req, std::nullopt, [&](const nlmsghdr* nlh) {
      auto chunk = codec::parse_list_reply(nlh, std::nullopt);
      if (chunk.ok() && chunk->header) type = chunk->header->type;
      return chunk.ok() ? 0 : -EPROTO;
    });
    if (!st.ok()) return st;
    if (!type) return Status::Error("get header of ipset " + name + ": no type", EPROTO);
    types_[name] = *type;
    return *type;
  }

  // The newest revision of the type the kernel knows.
  Result<uint8_t> revision(const SetSpec& spec) {
    auto key = std::make_pair(spec.type, codec::nfproto_of(spec));
    auto it = revisions_.find(key);
    if (it != revisions_.end()) return it->second;
    codec::Request req(IPSET_CMD_TYPE, 0, key.second);
    req.put_typename(spec.type);
    req.put_family(key.second);
    std::optional<uint8_t> rev;
    Status st = run(std::string("query ipset type ") + to_string(spec.type), req, spec.type,
                    [&](const nlmsghdr* nlh) {
                      auto r = codec::parse_type_reply(nlh);
                      if (r.ok()) rev = r->max;
                      return r.ok() ? 0 : -EPROTO;
                    });
    if (!st.ok()) return st;
    if (!rev) return Status::Error("query ipset type: no revision in reply", EPROTO);
    revisions_[key] = *rev;
    return *rev;
  }

  std::unique_ptr<NfnlSocket> sock_;
  std::map<std::string, SetType> types_;
  std::map<std::pair<SetType, uint8_t>, uint8_t> revisions_;
};

}  // namespace

Result<IpsetPtr> open_netlink_ipset() {
  auto sock = NfnlSocket::open();
  if (!sock.ok()) return sock.status().Wrap("open ipset client");
  return IpsetPtr(std::make_unique<NetlinkIpset>(std::move(*sock)));
}

}  // namespace knode::ipset
