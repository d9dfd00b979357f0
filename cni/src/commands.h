// The six CNI commands, each given a validated request and configuration.
#pragma once

#include <string>

#include "knode/cni/config.h"
#include "knode/cni/error.h"
#include "request.h"

namespace knode::cni {

Outcome<std::string> cmd_add(const Request& req, const NetConf& conf);  // result JSON
Done cmd_del(const Request& req, const NetConf& conf);
Done cmd_check(const Request& req, const NetConf& conf);
Done cmd_gc(const NetConf& conf);
Done cmd_status(const NetConf& conf);

}  // namespace knode::cni
