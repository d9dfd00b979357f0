// ObjectMeta and the pieces every object shares.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "knode/api/values.h"
#include "knode/status.h"

// Each API struct lists its fields once, as (JSON name, member) pairs, in `fields(v)`:
// the generic codec (common/api/codec) decodes, encodes and reports unknown fields from
// that single list.
#define KNODE_FIELDS(...)            \
  template <typename V>              \
  void fields(V& v) {                \
    __VA_ARGS__;                     \
  }                                  \
  template <typename V>              \
  void fields(V& v) const {          \
    const_cast<std::remove_const_t<std::remove_reference_t<decltype(*this)>>*>(this)->fields(v); \
  }

namespace knode::api {

using StringMap = std::map<std::string, std::string>;

struct OwnerReference {
  std::string api_version, kind, name, uid;
  std::optional<bool> controller, block_owner_deletion;
  KNODE_FIELDS(v("apiVersion", api_version); v("kind", kind); v("name", name); v("uid", uid);
               v("controller", controller); v("blockOwnerDeletion", block_owner_deletion))
  bool operator==(const OwnerReference&) const = default;
};

struct ObjectMeta {
  std::string name, generate_name, namespace_, uid, resource_version;
  int64_t generation = 0;
  Time creation_timestamp, deletion_timestamp;
  std::optional<int64_t> deletion_grace_period_seconds;
  StringMap labels, annotations;
  std::vector<OwnerReference> owner_references;
  std::vector<std::string> finalizers;
  KNODE_FIELDS(v("name", name); v("generateName", generate_name); v("namespace", namespace_);
               v("uid", uid); v("resourceVersion", resource_version);
               v("generation", generation); v("creationTimestamp", creation_timestamp);
               v("deletionTimestamp", deletion_timestamp);
               v("deletionGracePeriodSeconds", deletion_grace_period_seconds);
               v("labels", labels); v("annotations", annotations);
               v("ownerReferences", owner_references); v("finalizers", finalizers))
  bool operator==(const ObjectMeta&) const = default;
};

// metav1.LabelSelector. A null selector (an unset optional) matches nothing; an empty one
// matches everything.
struct LabelSelectorRequirement {
  std::string key, operator_;  // In, NotIn, Exists, DoesNotExist
  std::vector<std::string> values;
  KNODE_FIELDS(v("key", key); v("operator", operator_); v("values", values))
  bool operator==(const LabelSelectorRequirement&) const = default;
};
struct LabelSelector {
  StringMap match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;
  KNODE_FIELDS(v("matchLabels", match_labels); v("matchExpressions", match_expressions))
  bool operator==(const LabelSelector&) const = default;
};
// Whether `labels` satisfy every matchLabels pair and every expression (an unknown
// operator, or In/NotIn without values, Exists/DoesNotExist with some: an error naming it,
// as metav1.LabelSelectorAsSelector refuses them).
Result<bool> selector_matches(const LabelSelector& s, const StringMap& labels);

struct ObjectReference {
  std::string kind, namespace_, name, uid, api_version, resource_version, field_path;
  KNODE_FIELDS(v("kind", kind); v("namespace", namespace_); v("name", name); v("uid", uid);
               v("apiVersion", api_version); v("resourceVersion", resource_version);
               v("fieldPath", field_path))
  bool operator==(const ObjectReference&) const = default;
};

struct LocalObjectReference {
  std::string name;
  KNODE_FIELDS(v("name", name))
  bool operator==(const LocalObjectReference&) const = default;
};

}  // namespace knode::api
