// What both manifest targets do with every object that decodes: defaults and validation
// once more, the Endpoints -> EndpointSlice conversion, and the JSON round trip the unit
// tests promise (tests/common/api/codec_test.cc, PodRoundTripsThroughJson): the encoding
// of an accepted object decodes again, to an equal object, and encodes the same.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <variant>

#include "defaults.h"   // common/api (private): apply_defaults
#include "fuzz_util.h"
#include "knode/api/codec.h"
#include "knode/api/convert.h"
#include "knode/api/object.h"
#include "validate.h"   // common/api (private): validate

namespace knode::fuzz {

inline void check_decoded_object(const api::Object& obj) {
  // Identity helpers must not trip on anything that validated.
  (void)api::key_of(obj).str();
  (void)api::namespaced_name(api::meta_of(obj));

  // Defaults and validation again, on a copy (the decoder already ran them once).
  api::Object copy = obj;
  api::apply_defaults(copy);
  (void)api::validate(copy);

  if (const auto* ep = api::get_if<api::Endpoints>(&obj)) {
    for (auto& slice : api::endpoints_to_slices(*ep)) {
      api::Object s(std::move(slice));
      (void)api::validate(s);
      (void)api::encode_json(s);
    }
  }

#ifndef KNODE_FUZZ_NO_ROUNDTRIP
  const std::string text = api::encode_json(obj);
  auto again = api::decode_manifest(text, "roundtrip.json");
  if (!again.ok()) fail("encode_json output does not parse again", text + "\n" + again.error());
  if (again->objects.size() != 1) {
    fail("encode_json output does not decode to one object",
         text + "\n" + (again->rejected.empty() ? std::string() : again->rejected.front().error));
  }
  if (!(*again->objects.front() == obj)) fail("decode(encode(o)) != o", text);
  const std::string text2 = api::encode_json(*again->objects.front());
  if (text2 != text) fail("encode(decode(encode(o))) != encode(o)", text + "\n" + text2);
#endif
}

}  // namespace knode::fuzz
