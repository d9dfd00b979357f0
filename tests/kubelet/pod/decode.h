// Test objects written as manifests, decoded (and defaulted) as knode decodes them.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "knode/api/codec.h"

namespace knode::kubelet::testing {

template <typename T>
T decode(const std::string& yaml) {
  auto r = api::decode_manifest(yaml, "test.yaml");
  if (!r.ok()) {
    ADD_FAILURE() << r.error();
    return T{};
  }
  if (r->objects.size() != 1) {
    ADD_FAILURE() << (r->rejected.empty() ? "no object" : r->rejected.front().error);
    return T{};
  }
  return api::get<T>(*r->objects.front());
}

}  // namespace knode::kubelet::testing
