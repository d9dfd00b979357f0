// knode-cni: the CNI plugin (CNI_COMMAND + stdin), or, with flags, the conflist writer:
//   knode-cni --write-conflist --pod-cidr 10.244.1.0/24 [--bridge cni0] [--mtu N]
//             [--out /etc/cni/net.d/10-knode.conflist] [--name knode] [--no-masquerade]
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "knode/cni/conflist.h"
#include "knode/cni/plugin.h"

namespace {

int write_conflist_main(int argc, char** argv) {
  knode::cni::ConflistOptions opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "knode-cni: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--write-conflist") continue;
    if (a == "--pod-cidr") {
      opts.pod_cidr = value();
    } else if (a == "--bridge") {
      opts.bridge = value();
    } else if (a == "--out") {
      opts.path = value();
    } else if (a == "--name") {
      opts.network_name = value();
    } else if (a == "--mtu") {
      const std::string v = value();
      unsigned mtu = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), mtu);
      if (ec != std::errc() || end != v.data() + v.size() || mtu < 68 || mtu > 65535) {
        std::cerr << "knode-cni: invalid value for --mtu: \"" << v << "\" (want 68-65535)\n";
        return 2;
      }
      opts.mtu = mtu;
    } else if (a == "--data-dir") {
      opts.data_dir = value();
    } else if (a == "--no-masquerade") {
      opts.ip_masq = false;
    } else {
      std::cerr << "knode-cni: unknown flag " << a << "\n";
      return 2;
    }
  }
  if (opts.pod_cidr.empty()) {
    std::cerr << "knode-cni: --write-conflist needs --pod-cidr\n";
    return 2;
  }
  knode::Status s = knode::cni::write_conflist(opts);
  if (!s) {
    std::cerr << "knode-cni: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) return write_conflist_main(argc, argv);
  std::string in;
  if (::isatty(STDIN_FILENO) == 0) {
    char buf[16384];
    ssize_t n;
    while ((n = ::read(STDIN_FILENO, buf, sizeof(buf))) > 0) in.append(buf, static_cast<size_t>(n));
  }
  knode::cni::Response r = knode::cni::run_plugin(knode::cni::process_env(), in);
  std::fwrite(r.out.data(), 1, r.out.size(), stdout);
  return r.exit_code;
}
