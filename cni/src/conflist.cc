#include "knode/cni/conflist.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "knode/net.h"
#include "knode/json_get.h"

namespace knode::cni {

using nlohmann::json;

Result<json> make_conflist(const ConflistOptions& opts) {
  auto cidr = net::Cidr::Parse(opts.pod_cidr);
  if (!cidr) return Status::Error("pod CIDR \"" + opts.pod_cidr + "\" is not a CIDR", EINVAL);
  const bool v4 = cidr->address().is_v4();
  json ipam = {{"type", "host-local"},
               {"ranges", json::array({json::array({json{{"subnet", cidr->str()}}})})},
               {"routes", json::array({json{{"dst", v4 ? "0.0.0.0/0" : "::/0"}}})}};
  if (!opts.data_dir.empty()) ipam["dataDir"] = opts.data_dir;
  json plugin = {{"type", "knode-cni"},
                 {"bridge", opts.bridge},
                 {"isGateway", true},
                 {"isDefaultGateway", true},
                 {"hairpinMode", opts.hairpin_mode},
                 {"ipMasq", opts.ip_masq},
                 {"ipam", ipam},
                 {"capabilities", {{"portMappings", true}}}};
  if (opts.mtu != 0) plugin["mtu"] = opts.mtu;
  // 1.0.0 for runtimes that predate 1.1; newer ones pick the highest of cniVersions.
  return json{{"cniVersion", "1.0.0"},
              {"cniVersions", json::array({"1.0.0", "1.1.0"})},
              {"name", opts.network_name},
              {"plugins", json::array({plugin})}};
}

Status write_conflist(const ConflistOptions& opts) {
  auto doc = make_conflist(opts);
  if (!doc.ok()) return doc.status();
  std::string text = jget::dump(*doc, 2) + "\n";
  {
    std::ifstream in(opts.path);
    if (in) {
      std::stringstream cur;
      cur << in.rdbuf();
      if (cur.str() == text) return Status::Ok();
    }
  }
  auto slash = opts.path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::string dir = opts.path.substr(0, slash);
    for (size_t p = dir.find('/', 1);; p = dir.find('/', p + 1)) {
      ::mkdir(dir.substr(0, p).c_str(), 0755);  // existing parts fail with EEXIST
      if (p == std::string::npos) break;
    }
  }
  std::string tmp = opts.path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("write " + tmp, errno);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::FromErrno("write " + tmp, err);
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), opts.path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno("rename " + tmp + " to " + opts.path, err);
  }
  return Status::Ok();
}

}  // namespace knode::cni
