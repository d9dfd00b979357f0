#pragma once
#include "knode/api/object.h"
namespace knode::api {
// Fills in what the API server defaults (namespace, protocols, policies, probe timings).
void apply_defaults(Object& o);
}  // namespace knode::api
