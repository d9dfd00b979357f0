// The six CNI commands, each given a validated request and configuration.
#pragma once

#include <string>

#include "knode/cni/config.h"
#include "knode/cni/error.h"
#include "request.h"

namespace knode::cni {

Result<std::string> cmd_add(const Request& req, const NetConf& conf);  // result JSON
Status cmd_del(const Request& req, const NetConf& conf);
Status cmd_check(const Request& req, const NetConf& conf);
Status cmd_gc(const NetConf& conf);
Status cmd_status(const NetConf& conf);

}  // namespace knode::cni
