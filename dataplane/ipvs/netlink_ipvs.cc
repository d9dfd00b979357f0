// Ipvs over generic netlink (family "IPVS"), as ipvsadm's libipvs speaks it.
#include <linux/ip_vs.h>
#include <netlink/genl/genl.h>

#include "ipvs/codec.h"
#include "ipvs/genl_socket.h"
#include "knode/dataplane/ipvs.h"

namespace knode::ipvs {

namespace {

class NetlinkIpvs final : public Ipvs {
 public:
  explicit NetlinkIpvs(std::unique_ptr<GenlSocket> sock) : sock_(std::move(sock)) {}

  bool is_available() override { return family() >= 0; }

  Result<std::vector<VirtualServer>> list_services() override {
    std::vector<VirtualServer> out;
    Status st = request("list IPVS services", IPVS_CMD_GET_SERVICE, NLM_F_DUMP, nullptr,
                        [&](nlattr** tb) {
                          auto vs = codec::parse_service(tb[IPVS_CMD_ATTR_SERVICE]);
                          if (!vs.ok()) return -EPROTO;
                          out.push_back(std::move(*vs));
                          return 0;
                        });
    if (!st.ok()) return st;
    return out;
  }

  Result<VirtualServer> get_service(const VirtualServer& key) override {
    std::optional<VirtualServer> found;
    Status st = request(
        "get IPVS service " + key.str(), IPVS_CMD_GET_SERVICE, 0,
        [&](nl_msg* m) { return codec::put_service(m, key, false); },
        [&](nlattr** tb) {
          auto vs = codec::parse_service(tb[IPVS_CMD_ATTR_SERVICE]);
          if (!vs.ok()) return -EPROTO;
          found = std::move(*vs);
          return 0;
        });
    if (!st.ok()) return st;
    if (!found) return Status::FromErrno("get IPVS service " + key.str(), ENOENT);
    return *found;
  }

  Status add_service(const VirtualServer& vs) override {
    return request("add IPVS service " + vs.str(), IPVS_CMD_NEW_SERVICE, 0,
                   [&](nl_msg* m) { return codec::put_service(m, vs, true); });
  }

  Status update_service(const VirtualServer& vs) override {
    return request("update IPVS service " + vs.str(), IPVS_CMD_SET_SERVICE, 0,
                   [&](nl_msg* m) { return codec::put_service(m, vs, true); });
  }

  Status delete_service(const VirtualServer& vs) override {
    return request("delete IPVS service " + vs.str(), IPVS_CMD_DEL_SERVICE, 0,
                   [&](nl_msg* m) { return codec::put_service(m, vs, false); });
  }

  Result<std::vector<RealServer>> list_destinations(const VirtualServer& vs) override {
    std::vector<RealServer> out;
    const int af = codec::address_family(vs.address);
    Status st = request(
        "list IPVS destinations of " + vs.str(), IPVS_CMD_GET_DEST, NLM_F_DUMP,
        [&](nl_msg* m) { return codec::put_service(m, vs, false); },
        [&](nlattr** tb) {
          auto rs = codec::parse_destination(tb[IPVS_CMD_ATTR_DEST], af);
          if (!rs.ok()) return -EPROTO;
          out.push_back(std::move(*rs));
          return 0;
        });
    if (!st.ok()) return st;
    return out;
  }

  Status add_destination(const VirtualServer& vs, const RealServer& rs) override {
    return request("add IPVS destination " + rs.str() + " to " + vs.str(), IPVS_CMD_NEW_DEST,
                   0, [&](nl_msg* m) { return put_both(m, vs, rs, true); });
  }

  Status update_destination(const VirtualServer& vs, const RealServer& rs) override {
    return request("update IPVS destination " + rs.str() + " of " + vs.str(),
                   IPVS_CMD_SET_DEST, 0, [&](nl_msg* m) { return put_both(m, vs, rs, true); });
  }

  Status delete_destination(const VirtualServer& vs, const RealServer& rs) override {
    return request("delete IPVS destination " + rs.str() + " from " + vs.str(),
                   IPVS_CMD_DEL_DEST, 0, [&](nl_msg* m) { return put_both(m, vs, rs, false); });
  }

  Result<Timeouts> get_timeouts() override {
    Timeouts t;
    Status st = request("get IPVS timeouts", IPVS_CMD_GET_CONFIG, 0, nullptr,
                        [&](nlattr** tb) {
                          t = codec::parse_timeouts(tb);
                          return 0;
                        });
    if (!st.ok()) return st;
    return t;
  }

  Status set_timeouts(const Timeouts& t) override {
    return request("set IPVS timeouts", IPVS_CMD_SET_CONFIG, 0,
                   [&](nl_msg* m) { return codec::put_timeouts(m, t); });
  }

  Status flush() override { return request("flush IPVS", IPVS_CMD_FLUSH, 0, nullptr); }

 private:
  using BuildFn = std::function<Status(nl_msg*)>;
  using ParseFn = std::function<int(nlattr**)>;

  static Status put_both(nl_msg* m, const VirtualServer& vs, const RealServer& rs, bool full) {
    Status st = codec::put_service(m, vs, false);
    return st.ok() ? codec::put_destination(m, rs, full) : st;
  }

  int family() {
    if (family_ < 0) family_ = sock_->resolve_family(IPVS_GENL_NAME);
    return family_;
  }

  Status request(const std::string& what, uint8_t cmd, int flags, const BuildFn& build,
                 const ParseFn& parse = nullptr) {
    int fam = family();
    if (fam < 0) {
      return Status::Error(what + ": IPVS is not available in this kernel (generic netlink "
                                  "family \"IPVS\" not found; is ip_vs loaded?)",
                           ENOENT);
    }
    NlMsgPtr msg = GenlSocket::new_message(fam, cmd, IPVS_GENL_VERSION, flags);
    if (!msg) return Status::Error(what + ": cannot allocate netlink message", ENOMEM);
    if (build) {
      Status st = build(msg.get());
      if (!st.ok()) return st.Wrap(what);
    }
    int rc = sock_->transact(msg.get(), [&](nl_msg* reply) {
      if (!parse) return 0;
      nlattr* tb[IPVS_CMD_ATTR_MAX + 1] = {};
      if (genlmsg_parse(nlmsg_hdr(reply), 0, tb, IPVS_CMD_ATTR_MAX, codec::cmd_policy()) < 0) {
        return -EPROTO;
      }
      return parse(tb);
    });
    if (rc < 0) return Status::FromErrno(what, -rc);
    return Status::Ok();
  }

  std::unique_ptr<GenlSocket> sock_;
  int family_ = -1;
};

}  // namespace

Result<IpvsPtr> open_netlink_ipvs() {
  auto sock = GenlSocket::open();
  if (!sock.ok()) return sock.status().Wrap("open IPVS client");
  return IpvsPtr(std::make_unique<NetlinkIpvs>(std::move(*sock)));
}

}  // namespace knode::ipvs
