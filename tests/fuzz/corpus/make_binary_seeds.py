#!/usr/bin/env python3
"""Writes the binary seed inputs of the fuzz targets (tests/fuzz/README.md) into the
corpus folders next to this script:

  iptables_blob/   ipt_getinfo fields + ipt_entry records (linux/netfilter_ipv4/ip_tables.h)
  ipvs_reply/      generic netlink IPVS replies (linux/ip_vs.h, linux/genetlink.h)
  ipset_reply/     nfnetlink ipset replies (linux/netfilter/ipset/ip_set.h)
  nftables_decode/ nfnetlink nf_tables dump messages (linux/netfilter/nf_tables.h)
  nftables_udata/  nft userdata TLVs
  cri_proto/       CRI runtime.v1 replies, protobuf encoded by hand from kubelet/cri/api.proto
  docker_stream/   dockerd's multiplexed log frames

Enum values are read from the installed UAPI headers and field numbers from api.proto, so
the seeds follow the layouts this machine builds against. Deterministic: running it again
rewrites the same bytes. Usage: python3 tests/fuzz/corpus/make_binary_seeds.py
"""

import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
INC = "/usr/include"


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def enum_values(header):
    """NAME -> value for every enumerator of every enum in a C header (simple enums:
    explicit values, implicit increments, references to earlier names and NAME + 1)."""
    text = open(os.path.join(INC, header)).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    values = {}
    for body in re.findall(r"enum\s*\w*\s*\{(.*?)\}", text, re.S):
        nxt = 0
        for item in body.split(","):
            item = item.strip()
            if not item or item.startswith("#"):
                continue
            if "=" in item:
                name, expr = [x.strip() for x in item.split("=", 1)]
                expr = re.sub(r"\b([A-Z_][A-Z0-9_]*)\b", lambda m: str(values.get(m.group(1), m.group(1))), expr)
                try:
                    nxt = int(eval(expr, {}, {}))  # numbers and + - << only, after substitution
                except Exception:
                    continue
            else:
                name = item.split()[0]
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                values[name] = nxt
                nxt += 1
    return values


# ---------------------------------------------------------------- netlink helpers

NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLMSG_ERROR, NLMSG_DONE = 2, 3


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def attr(t, payload):
    return pad4(struct.pack("=HH", 4 + len(payload), t) + payload)


def nest(t, *attrs):
    return attr(t | NLA_F_NESTED, b"".join(attrs))


def u8(t, v):
    return attr(t, struct.pack("=B", v))


def u16(t, v):
    return attr(t, struct.pack("=H", v))


def u32(t, v):
    return attr(t, struct.pack("=I", v))


def u64(t, v):
    return attr(t, struct.pack("=Q", v))


def be16(t, v, flag=0):
    return attr(t | flag, struct.pack(">H", v))


def be32(t, v, flag=0):
    return attr(t | flag, struct.pack(">I", v))


def be64(t, v):
    return attr(t, struct.pack(">Q", v))


def string(t, s):
    return attr(t, s.encode() + b"\0")


def nlmsg(msg_type, body, flags=0x2, seq=1):  # NLM_F_MULTI
    return pad4(struct.pack("=IHHII", 16 + len(body), msg_type, flags, seq, 0) + body)


def done():
    return nlmsg(NLMSG_DONE, struct.pack("=i", 0))


def nlerror(err):
    return nlmsg(NLMSG_ERROR, struct.pack("=i", err) + struct.pack("=IHHII", 16, 0x1c, 5, 1, 0))


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def ip6(s):
    import ipaddress
    return ipaddress.IPv6Address(s).packed


# ---------------------------------------------------------------- iptables blob

def iptables_seeds():
    ENTRY, STD, ERR = 112, 40, 64
    NF_ACCEPT, NF_DROP, XT_RETURN = -2, -1, -5  # -NF_ACCEPT-1, -NF_DROP-1, -NF_REPEAT-1

    def entry(target, matches=b"", src=None):
        ip = bytearray(84)
        if src:
            ip[0:4] = ip4(src[0])
            ip[8:12] = ip4(src[1])  # smsk
        target_offset = ENTRY + len(matches)
        next_offset = target_offset + len(target)
        head = bytes(ip) + struct.pack("=IHHI", 0, target_offset, next_offset, 0) + struct.pack("=QQ", 0, 0)
        assert len(head) == ENTRY
        return head + matches + target

    def standard(verdict):
        return struct.pack("=H29sB", STD, b"", 0) + struct.pack("=i", verdict) + b"\0" * 4

    def error(name):
        return struct.pack("=H29sB", ERR, b"ERROR", 0) + name.encode().ljust(32, b"\0")

    def comment(text):
        return struct.pack("=H29sB", 32 + 256, b"comment", 0) + text.encode().ljust(256, b"\0")

    def table(chains, hooks_order):
        """chains: [(name, hook or None, [(target builder, matches)])]; builtins get a policy."""
        # First pass: offsets of each chain's body, to resolve jumps.
        out, bodies, info = b"", {}, {}
        layout = []
        off = 0
        for name, hook, rules in chains:
            if hook is None:
                off += ENTRY + ERR
            bodies[name] = off
            n = len(rules) + 1  # + policy / RETURN
            layout.append((name, hook, rules, off))
            for r in rules:
                off += ENTRY + len(r[1]) + STD
            off += ENTRY + STD
        hook_entry, underflow = [0] * 5, [0] * 5
        num = 0
        for name, hook, rules, body in layout:
            if hook is None:
                out += entry(error(name))
                num += 1
            else:
                hook_entry[hook] = len(out)
            for verdict, matches in rules:
                v = bodies[verdict] if isinstance(verdict, str) else verdict
                out += entry(standard(v), matches)
                num += 1
            if hook is not None:
                underflow[hook] = len(out)
                out += entry(standard(NF_ACCEPT))
            else:
                out += entry(standard(XT_RETURN))
            num += 1
        out += entry(error("ERROR"))
        num += 1
        valid = sum(1 << h for h in hooks_order)
        header = struct.pack("=I5I5II", valid, *hook_entry, *underflow, num)
        return header + out

    # An empty nat table: four built-in chains with their ACCEPT policies.
    put("iptables_blob", "nat_empty.bin", table(
        [("PREROUTING", 0, []), ("INPUT", 1, []), ("OUTPUT", 3, []), ("POSTROUTING", 4, [])], [0, 1, 3, 4]))
    # filter with a user chain, a jump to it, a comment match and a DROP.
    put("iptables_blob", "filter_user_chain.bin", table(
        [("INPUT", 1, [("KNODE-FW", b""), (NF_DROP, comment("knode: drop"))]),
         ("FORWARD", 2, []),
         ("OUTPUT", 3, [("KNODE-FW", b"")]),
         ("KNODE-FW", None, [(NF_ACCEPT, comment("allow")), ("KNODE-SUB", b"")]),
         ("KNODE-SUB", None, [(NF_ACCEPT, b"")])], [1, 2, 3]))
    # Kube-proxy-like nat: services chain with several user chains.
    chains = [("PREROUTING", 0, [("KUBE-SERVICES", comment("kubernetes service portals"))]),
              ("INPUT", 1, []), ("OUTPUT", 3, [("KUBE-SERVICES", b"")]),
              ("POSTROUTING", 4, [("KUBE-POSTROUTING", b"")]),
              ("KUBE-POSTROUTING", None, [(XT_RETURN, b"")]),
              ("KUBE-SERVICES", None, [("KUBE-SVC-A", comment("default/kubia:http cluster IP"))]),
              ("KUBE-SVC-A", None, [("KUBE-SEP-1", b""), ("KUBE-SEP-2", b"")]),
              ("KUBE-SEP-1", None, [(NF_ACCEPT, b"")]),
              ("KUBE-SEP-2", None, [])]
    put("iptables_blob", "nat_kube.bin", table(chains, [0, 1, 3, 4]))
    # Malformed: a chain without an end, and a jump into the middle of a chain.
    blob = bytearray(table([("INPUT", 1, [])], [1]))
    put("iptables_blob", "truncated.bin", bytes(blob[:48 + 112 + 24]))  # entries cut mid-record


# ---------------------------------------------------------------- IPVS

def ipvs_seeds():
    e = enum_values("linux/ip_vs.h")
    fam = 0x1c  # any generic netlink family id >= NLMSG_MIN_TYPE

    def genl(cmd, *attrs):
        return nlmsg(fam, struct.pack("=BBH", cmd, 1, 0) + b"".join(attrs))

    def stats(t, is64):
        put_n = u64 if is64 else u32
        return nest(t, put_n(e["IPVS_STATS_ATTR_CONNS"], 3), put_n(e["IPVS_STATS_ATTR_INPKTS"], 10),
                    put_n(e["IPVS_STATS_ATTR_OUTPKTS"], 9), u64(e["IPVS_STATS_ATTR_INBYTES"], 1000),
                    u64(e["IPVS_STATS_ATTR_OUTBYTES"], 900), put_n(e["IPVS_STATS_ATTR_CPS"], 1))

    def service(af, addr, port, sched="rr", proto=6, netmask=0xffffffff, stats64=True):
        return nest(e["IPVS_CMD_ATTR_SERVICE"],
                    u16(e["IPVS_SVC_ATTR_AF"], af), u16(e["IPVS_SVC_ATTR_PROTOCOL"], proto),
                    attr(e["IPVS_SVC_ATTR_ADDR"], addr.ljust(16, b"\0")),
                    be16(e["IPVS_SVC_ATTR_PORT"], port), string(e["IPVS_SVC_ATTR_SCHED_NAME"], sched),
                    attr(e["IPVS_SVC_ATTR_FLAGS"], struct.pack("=II", 0x0001, 0xffffffff)),
                    u32(e["IPVS_SVC_ATTR_TIMEOUT"], 10800), u32(e["IPVS_SVC_ATTR_NETMASK"], netmask),
                    stats(e["IPVS_SVC_ATTR_STATS64" if stats64 else "IPVS_SVC_ATTR_STATS"], stats64))

    def dest(addr, port, weight=1, af=None):
        attrs = [attr(e["IPVS_DEST_ATTR_ADDR"], addr.ljust(16, b"\0")), be16(e["IPVS_DEST_ATTR_PORT"], port),
                 u32(e["IPVS_DEST_ATTR_FWD_METHOD"], 0), u32(e["IPVS_DEST_ATTR_WEIGHT"], weight),
                 u32(e["IPVS_DEST_ATTR_U_THRESH"], 0), u32(e["IPVS_DEST_ATTR_L_THRESH"], 0),
                 u32(e["IPVS_DEST_ATTR_ACTIVE_CONNS"], 2), u32(e["IPVS_DEST_ATTR_INACT_CONNS"], 1),
                 u32(e["IPVS_DEST_ATTR_PERSIST_CONNS"], 0), stats(e["IPVS_DEST_ATTR_STATS"], False)]
        if af is not None:
            attrs.append(u16(e["IPVS_DEST_ATTR_ADDR_FAMILY"], af))
        return nest(e["IPVS_CMD_ATTR_DEST"], *attrs)

    new_svc, new_dest, set_cfg = e["IPVS_CMD_NEW_SERVICE"], e["IPVS_CMD_NEW_DEST"], e["IPVS_CMD_SET_CONFIG"]
    put("ipvs_reply", "services_dump.bin", b"\0" + genl(new_svc, service(2, ip4("10.96.0.10"), 80))
        + genl(new_svc, service(2, ip4("192.168.1.10"), 30080, "sh", 17, 0xffffff00, False)) + done())
    put("ipvs_reply", "service_v6.bin", b"\1" + genl(new_svc, service(10, ip6("fd00::10"), 443, "mh", 6, 128)) + done())
    put("ipvs_reply", "dests_dump.bin", b"\0" + genl(new_dest, dest(ip4("10.244.0.5"), 8080, 1, 2))
        + genl(new_dest, dest(ip4("10.244.0.6"), 8080, 0)) + done())
    put("ipvs_reply", "timeouts.bin", b"\0" + genl(set_cfg, u32(e["IPVS_CMD_ATTR_TIMEOUT_TCP"], 900),
                                                   u32(e["IPVS_CMD_ATTR_TIMEOUT_TCP_FIN"], 120),
                                                   u32(e["IPVS_CMD_ATTR_TIMEOUT_UDP"], 300)))
    put("ipvs_reply", "error.bin", b"\0" + nlerror(-2))


# ---------------------------------------------------------------- ipset

def ipset_seeds():
    e = enum_values("linux/netfilter/ipset/ip_set.h")
    SUBSYS_IPSET = 6
    NFPROTO_IPV4, NFPROTO_IPV6 = 2, 10

    def msg(cmd, family, *attrs):
        return nlmsg((SUBSYS_IPSET << 8) | cmd, struct.pack("=BBH", family, 0, 0) + b"".join(attrs))

    def ipnest(t, addr):
        if len(addr) == 4:
            return nest(t, attr(e["IPSET_ATTR_IPADDR_IPV4"] | NLA_F_NET_BYTEORDER, addr))
        return nest(t, attr(e["IPSET_ATTR_IPADDR_IPV6"] | NLA_F_NET_BYTEORDER, addr))

    def header(name, typename, family, data):
        return [u8(e["IPSET_ATTR_PROTOCOL"], 7), string(e["IPSET_ATTR_SETNAME"], name),
                string(e["IPSET_ATTR_TYPENAME"], typename), u8(e["IPSET_ATTR_REVISION"], 5),
                u8(e["IPSET_ATTR_FAMILY"], family), nest(e["IPSET_ATTR_DATA"], *data)]

    hashdata = [be32(e["IPSET_ATTR_HASHSIZE"], 1024, NLA_F_NET_BYTEORDER),
                be32(e["IPSET_ATTR_MAXELEM"], 65536, NLA_F_NET_BYTEORDER),
                be32(e["IPSET_ATTR_REFERENCES"], 1, NLA_F_NET_BYTEORDER),
                be32(e["IPSET_ATTR_ELEMENTS"], 2, NLA_F_NET_BYTEORDER)]

    def entry_ipport(ip, port, proto=6):
        return nest(e["IPSET_ATTR_DATA"], ipnest(e["IPSET_ATTR_IP"], ip),
                    be16(e["IPSET_ATTR_PORT"], port, NLA_F_NET_BYTEORDER), u8(e["IPSET_ATTR_PROTO"], proto))

    lst = e["IPSET_CMD_LIST"]
    first = msg(lst, NFPROTO_IPV4, *header("KUBE-CLUSTER-IP", "hash:ip,port", NFPROTO_IPV4, hashdata),
                nest(e["IPSET_ATTR_ADT"], entry_ipport(ip4("10.96.0.10"), 80), entry_ipport(ip4("10.96.0.53"), 53, 17)))
    more = msg(lst, NFPROTO_IPV4, u8(e["IPSET_ATTR_PROTOCOL"], 7), string(e["IPSET_ATTR_SETNAME"], "KUBE-CLUSTER-IP"),
               nest(e["IPSET_ATTR_ADT"], entry_ipport(ip4("10.96.0.1"), 443)))
    put("ipset_reply", "list_hash_ip_port.bin", b"\0" + first + more + done())

    loop = msg(lst, NFPROTO_IPV4, *header("KUBE-LOOP-BACK", "hash:ip,port,ip", NFPROTO_IPV4, hashdata),
               nest(e["IPSET_ATTR_ADT"], nest(e["IPSET_ATTR_DATA"], ipnest(e["IPSET_ATTR_IP"], ip4("10.244.0.5")),
                                                be16(e["IPSET_ATTR_PORT"], 8080, NLA_F_NET_BYTEORDER),
                                                u8(e["IPSET_ATTR_PROTO"], 6),
                                                ipnest(e["IPSET_ATTR_IP2"], ip4("10.244.0.5")))))
    put("ipset_reply", "list_loopback.bin", b"\0" + loop + done())

    nets = msg(lst, NFPROTO_IPV6, *header("KUBE-LB-SRC", "hash:ip,port,net", NFPROTO_IPV6, hashdata),
               nest(e["IPSET_ATTR_ADT"], nest(e["IPSET_ATTR_DATA"], ipnest(e["IPSET_ATTR_IP"], ip6("fd00::1")),
                                                be16(e["IPSET_ATTR_PORT"], 80, NLA_F_NET_BYTEORDER),
                                                u8(e["IPSET_ATTR_PROTO"], 6),
                                                ipnest(e["IPSET_ATTR_IP2"], ip6("fd00:1::")),
                                                u8(e["IPSET_ATTR_CIDR2"], 64))))
    put("ipset_reply", "list_v6_net.bin", b"\0" + nets + done())

    bitmap = msg(lst, NFPROTO_IPV4, *header("KUBE-NODE-PORT-TCP", "bitmap:port", NFPROTO_IPV4,
                                            [be16(e["IPSET_ATTR_PORT"], 30000, NLA_F_NET_BYTEORDER),
                                             be16(e["IPSET_ATTR_PORT_TO"], 32767, NLA_F_NET_BYTEORDER)]),
                 nest(e["IPSET_ATTR_ADT"], nest(e["IPSET_ATTR_DATA"], be16(e["IPSET_ATTR_PORT"], 30080, NLA_F_NET_BYTEORDER))))
    put("ipset_reply", "list_bitmap_port.bin", b"\0" + bitmap + done())

    typ = msg(e["IPSET_CMD_TYPE"], NFPROTO_IPV4, u8(e["IPSET_ATTR_PROTOCOL"], 7),
              string(e["IPSET_ATTR_TYPENAME"], "hash:ip,port"), u8(e["IPSET_ATTR_FAMILY"], NFPROTO_IPV4),
              u8(e["IPSET_ATTR_REVISION"], 6), u8(e["IPSET_ATTR_REVISION_MIN"], 0))
    put("ipset_reply", "type_reply.bin", b"\3" + typ)
    put("ipset_reply", "error_exist.bin", b"\2" + nlerror(-e["IPSET_ERR_EXIST"]))


# ---------------------------------------------------------------- nf_tables

def nftables_seeds():
    e = enum_values("linux/netfilter/nf_tables.h")
    SUBSYS_NFTABLES = 10
    NFPROTO_IPV4 = 2

    def msg(m, *attrs):
        return nlmsg((SUBSYS_NFTABLES << 8) | e[m], struct.pack("=BBH", NFPROTO_IPV4, 0, 0) + b"".join(attrs))

    def udata_comment(text):
        v = text.encode() + b"\0"
        return bytes([0, len(v)]) + v

    def expr(name, *data):
        return nest(e["NFTA_LIST_ELEM"], string(e["NFTA_EXPR_NAME"], name), nest(e["NFTA_EXPR_DATA"], *data))

    def value(t, b):
        return nest(t, attr(e["NFTA_DATA_VALUE"], b))

    def verdict(t, code, chain=None):
        v = [be32(e["NFTA_VERDICT_CODE"], code & 0xffffffff)]
        if chain:
            v.append(string(e["NFTA_VERDICT_CHAIN"], chain))
        return nest(t, nest(e["NFTA_DATA_VERDICT"], *v))

    table = msg("NFT_MSG_NEWTABLE", string(e["NFTA_TABLE_NAME"], "kube-proxy"), be32(e["NFTA_TABLE_FLAGS"], 0),
                be32(e["NFTA_TABLE_USE"], 3), be64(e["NFTA_TABLE_HANDLE"], 1),
                attr(e["NFTA_TABLE_USERDATA"], udata_comment("rules for kube-proxy")))
    chain_base = msg("NFT_MSG_NEWCHAIN", string(e["NFTA_CHAIN_TABLE"], "kube-proxy"), be64(e["NFTA_CHAIN_HANDLE"], 2),
                     string(e["NFTA_CHAIN_NAME"], "nat-prerouting"),
                     nest(e["NFTA_CHAIN_HOOK"], be32(e["NFTA_HOOK_HOOKNUM"], 0), be32(e["NFTA_HOOK_PRIORITY"], (-100) & 0xffffffff)),
                     be32(e["NFTA_CHAIN_POLICY"], 1), string(e["NFTA_CHAIN_TYPE"], "nat"), be32(e["NFTA_CHAIN_USE"], 1))
    chain_user = msg("NFT_MSG_NEWCHAIN", string(e["NFTA_CHAIN_TABLE"], "kube-proxy"), be64(e["NFTA_CHAIN_HANDLE"], 3),
                     string(e["NFTA_CHAIN_NAME"], "services"), be32(e["NFTA_CHAIN_USE"], 0))
    # ip daddr 10.96.0.10 tcp dport 80 jump service-X ; and a vmap lookup
    rule1 = msg("NFT_MSG_NEWRULE", string(e["NFTA_RULE_TABLE"], "kube-proxy"), string(e["NFTA_RULE_CHAIN"], "services"),
                be64(e["NFTA_RULE_HANDLE"], 4),
                nest(e["NFTA_RULE_EXPRESSIONS"],
                     expr("payload", be32(e["NFTA_PAYLOAD_DREG"], 1), be32(e["NFTA_PAYLOAD_BASE"], 1),
                          be32(e["NFTA_PAYLOAD_OFFSET"], 16), be32(e["NFTA_PAYLOAD_LEN"], 4)),
                     expr("cmp", be32(e["NFTA_CMP_SREG"], 1), be32(e["NFTA_CMP_OP"], 0), value(e["NFTA_CMP_DATA"], ip4("10.96.0.10"))),
                     expr("meta", be32(e["NFTA_META_KEY"], 16), be32(e["NFTA_META_DREG"], 1)),
                     expr("cmp", be32(e["NFTA_CMP_SREG"], 1), be32(e["NFTA_CMP_OP"], 0), value(e["NFTA_CMP_DATA"], b"\x06")),
                     expr("payload", be32(e["NFTA_PAYLOAD_DREG"], 1), be32(e["NFTA_PAYLOAD_BASE"], 2),
                          be32(e["NFTA_PAYLOAD_OFFSET"], 2), be32(e["NFTA_PAYLOAD_LEN"], 2)),
                     expr("cmp", be32(e["NFTA_CMP_SREG"], 1), be32(e["NFTA_CMP_OP"], 0), value(e["NFTA_CMP_DATA"], b"\x00\x50")),
                     expr("counter", be64(e["NFTA_COUNTER_BYTES"], 0), be64(e["NFTA_COUNTER_PACKETS"], 0)),
                     expr("immediate", be32(e["NFTA_IMMEDIATE_DREG"], 0),
                          verdict(e["NFTA_IMMEDIATE_DATA"], -3, "service-ULMVA6XW-default/kubia/tcp/http"))),
                attr(e["NFTA_RULE_USERDATA"], udata_comment("default/kubia:http cluster IP")))
    rule2 = msg("NFT_MSG_NEWRULE", string(e["NFTA_RULE_TABLE"], "kube-proxy"), string(e["NFTA_RULE_CHAIN"], "nat-prerouting"),
                be64(e["NFTA_RULE_HANDLE"], 5),
                nest(e["NFTA_RULE_EXPRESSIONS"],
                     expr("numgen", be32(e["NFTA_NG_DREG"], 1), be32(e["NFTA_NG_MODULUS"], 2), be32(e["NFTA_NG_TYPE"], 1)),
                     expr("byteorder", be32(e["NFTA_BYTEORDER_SREG"], 1), be32(e["NFTA_BYTEORDER_DREG"], 1),
                          be32(e["NFTA_BYTEORDER_OP"], 1), be32(e["NFTA_BYTEORDER_LEN"], 4),
                          be32(e["NFTA_BYTEORDER_SIZE"], 4)),
                     expr("lookup", string(e["NFTA_LOOKUP_SET"], "__map0"), be32(e["NFTA_LOOKUP_SREG"], 1),
                          be32(e["NFTA_LOOKUP_DREG"], 0), be32(e["NFTA_LOOKUP_SET_ID"], 1)),
                     expr("ct", be32(e["NFTA_CT_KEY"], 0), be32(e["NFTA_CT_DREG"], 1)),
                     expr("bitwise", be32(e["NFTA_BITWISE_SREG"], 1), be32(e["NFTA_BITWISE_DREG"], 1), be32(e["NFTA_BITWISE_LEN"], 4),
                          value(e["NFTA_BITWISE_MASK"], b"\x06\0\0\0"), value(e["NFTA_BITWISE_XOR"], b"\0\0\0\0")),
                     expr("masq", be32(e["NFTA_MASQ_FLAGS"], 4))))
    set_ = msg("NFT_MSG_NEWSET", string(e["NFTA_SET_TABLE"], "kube-proxy"), string(e["NFTA_SET_NAME"], "service-ips"),
               be32(e["NFTA_SET_FLAGS"], 0x8), be32(e["NFTA_SET_KEY_TYPE"], (7 << 12) | (12 << 6) | 13),
               be32(e["NFTA_SET_KEY_LEN"], 12), be32(e["NFTA_SET_DATA_TYPE"], 0xffffff00), be32(e["NFTA_SET_DATA_LEN"], 0),
               be32(e["NFTA_SET_ID"], 1),
               attr(e["NFTA_SET_USERDATA"], bytes([0, 4]) + struct.pack("=I", 2) + bytes([7, 12]) + b"ClusterIPs\0\0"))
    elem = msg("NFT_MSG_NEWSETELEM", string(e["NFTA_SET_ELEM_LIST_TABLE"], "kube-proxy"),
               string(e["NFTA_SET_ELEM_LIST_SET"], "service-ips"),
               nest(e["NFTA_SET_ELEM_LIST_ELEMENTS"],
                    nest(e["NFTA_LIST_ELEM"], value(e["NFTA_SET_ELEM_KEY"], ip4("10.96.0.10") + b"\x06\0\0\0\0\x50\0\0"),
                         verdict(e["NFTA_SET_ELEM_DATA"], -4, "service-X"),
                         attr(e["NFTA_SET_ELEM_USERDATA"], udata_comment("default/kubia:http")))))
    gen = msg("NFT_MSG_NEWGEN", be32(e["NFTA_GEN_ID"], 42))
    put("nftables_decode", "table_chains.bin", table + chain_base + chain_user + done())
    put("nftables_decode", "rules.bin", chain_user + rule1 + chain_base + rule2 + done())
    put("nftables_decode", "set_elements.bin", set_ + elem + done())
    put("nftables_decode", "whole_dump.bin", gen + table + set_ + elem + chain_base + chain_user + rule1 + rule2 + done())

    # userdata notes
    put("nftables_udata", "comment.bin", udata_comment("default/kubia:http cluster IP"))
    put("nftables_udata", "set_note.bin", bytes([0, 4]) + struct.pack("=I", 2) + bytes([1, 4]) + struct.pack("=I", 1)
        + bytes([2, 4]) + struct.pack("=I", 1) + bytes([3, 3]) + b"\x01\x02\x03" + bytes([7, 6]) + b"hello\0")
    put("nftables_udata", "element_note.bin", bytes([0, 5]) + b"abcd\0" + bytes([1, 4]) + struct.pack("=I", 1))
    put("nftables_udata", "malformed.bin", bytes([0, 200]) + b"short")


# ---------------------------------------------------------------- CRI protobuf

def proto_schema():
    text = open(os.path.join(REPO, "kubelet", "cri", "api.proto")).read()
    text = re.sub(r"//[^\n]*", "", text)
    enums = set(re.findall(r"\benum\s+(\w+)", text))
    msgs = {}
    for name, body in re.findall(r"\bmessage\s+(\w+)\s*\{(.*?)\n\}", text, re.S):
        fields = {}
        for rep, typ, fname, num in re.findall(r"(repeated\s+)?(map<\s*\w+\s*,\s*\w+\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;", body):
            fields[fname] = (int(num), typ.replace(" ", ""), bool(rep))
        msgs[name] = fields
    return msgs, enums


def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def encode(msgs, enums, name, value):
    out = b""
    for fname, v in value.items():
        num, typ, rep = msgs[name][fname]
        items = v if rep else [v]
        if typ.startswith("map<"):
            items = [{"k": k, "v": x} for k, x in v.items()]
        for item in items:
            if typ.startswith("map<"):
                inner = varint((1 << 3) | 2) + varint(len(item["k"].encode())) + item["k"].encode()
                inner += varint((2 << 3) | 2) + varint(len(item["v"].encode())) + item["v"].encode()
                out += varint((num << 3) | 2) + varint(len(inner)) + inner
            elif typ in ("string", "bytes"):
                b = item.encode() if isinstance(item, str) else item
                out += varint((num << 3) | 2) + varint(len(b)) + b
            elif typ in ("int32", "int64", "uint32", "uint64", "bool") or typ in enums:
                out += varint(num << 3) + varint(int(item))
            elif typ in ("double",):
                out += varint((num << 3) | 1) + struct.pack("<d", item)
            elif typ in msgs:
                inner = encode(msgs, enums, typ, item)
                out += varint((num << 3) | 2) + varint(len(inner)) + inner
            else:
                raise ValueError(f"{name}.{fname}: type {typ}")
    return out


def cri_seeds():
    msgs, enums = proto_schema()
    # The selector byte of cri_proto.cc: 0 Version, 1 Status, 2 RuntimeConfig, 3 PodSandboxStatus,
    # 4 ListPodSandbox, 5 ListContainers, 6 ContainerStatus, 7 ExecSync, 8 ContainerStats,
    # 9 ImageStatus, 10 ListImages, 11 ImageFsInfo.
    def seed(sel, fname, msg, value):
        put("cri_proto", fname, bytes([sel]) + encode(msgs, enums, msg, value))

    seed(0, "version.bin", "VersionResponse", {"version": "0.1.0", "runtime_name": "containerd",
                                               "runtime_version": "v1.7.24", "runtime_api_version": "v1"})
    seed(1, "status.bin", "StatusResponse", {"status": {"conditions": [
        {"type": "RuntimeReady", "status": True}, {"type": "NetworkReady", "status": False,
                                                   "reason": "NetworkPluginNotReady", "message": "cni config uninitialized"}]}})
    seed(6, "container_status.bin", "ContainerStatusResponse", {"status": {
        "id": "0123456789abcdef", "metadata": {"name": "app", "attempt": 2}, "state": 2,
        "created_at": 1764000000000000000, "started_at": 1764000001000000000, "finished_at": 1764000300000000000,
        "exit_code": 137, "image": {"image": "docker.io/library/kubia:1"}, "image_ref": "sha256:abc",
        "reason": "OOMKilled", "message": "", "labels": {"io.kubernetes.pod.uid": "7f1c"},
        "annotations": {"io.kubernetes.container.restartCount": "2"},
        "log_path": "/var/log/pods/shop_web_7f1c/app/2.log"}})
    seed(5, "list_containers.bin", "ListContainersResponse", {"containers": [
        {"id": "c1", "pod_sandbox_id": "s1", "metadata": {"name": "app", "attempt": 0}, "image": {"image": "kubia"},
         "image_ref": "sha256:abc", "state": 1, "created_at": 1764000000000000000, "labels": {"a": "b"}}]})
    seed(3, "sandbox_status.bin", "PodSandboxStatusResponse", {"status": {
        "id": "s1", "metadata": {"name": "web", "uid": "7f1c", "namespace": "shop", "attempt": 0}, "state": 0,
        "created_at": 1764000000000000000, "network": {"ip": "10.244.0.5", "additional_ips": [{"ip": "fd00::5"}]},
        "labels": {"app": "web"}}})
    seed(7, "exec_sync.bin", "ExecSyncResponse", {"stdout": b"ok\n", "stderr": b"", "exit_code": 0})
    seed(10, "list_images.bin", "ListImagesResponse", {"images": [
        {"id": "sha256:abc", "repo_tags": ["kubia:1"], "repo_digests": ["kubia@sha256:0123"], "size": 12345}]})


# ---------------------------------------------------------------- docker streams

def docker_seeds():
    def frame(stream, payload):
        return struct.pack(">BxxxI", stream, len(payload)) + payload
    body = (frame(1, b"2026-12-01T22:43:14.236658499Z hello\n")
            + frame(2, b"2026-12-01T22:43:14.3Z part of a long li")
            + frame(2, b"2026-12-01T22:43:14.4Z ne\n")
            + frame(3, b"error from daemon"))
    put("docker_stream", "multiplexed.bin", b"\x06\x00" + body)
    put("docker_stream", "multiplexed_after.bin", b"\xff\x01" + frame(1, b"2026-01-01T00:00:00Z early\n")
        + frame(1, b"2026-01-01T00:00:05.5+01:00 later\n"))


def main():
    iptables_seeds()
    ipvs_seeds()
    ipset_seeds()
    nftables_seeds()
    cri_seeds()
    docker_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
