#pragma once
#include <vector>
#include "knode/api/service.h"
namespace knode::api {
// Converts legacy v1 Endpoints into EndpointSlices the way the EndpointSlice mirroring
// controller does: one slice per subset and address family, labelled with the service
// name; notReadyAddresses become endpoints with ready=false.
std::vector<EndpointSlice> endpoints_to_slices(const Endpoints& ep);
}  // namespace knode::api
