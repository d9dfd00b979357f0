#include <algorithm>

#include "knode/api/meta.h"

namespace knode::api {

Result<bool> selector_matches(const LabelSelector& s, const StringMap& labels) {
  bool all = true;
  for (const auto& [k, v] : s.match_labels) {
    auto it = labels.find(k);
    all = all && it != labels.end() && it->second == v;
  }
  for (size_t i = 0; i < s.match_expressions.size(); ++i) {
    const auto& e = s.match_expressions[i];
    const std::string where = "matchExpressions[" + std::to_string(i) + "]";
    const bool set_op = e.operator_ == "In" || e.operator_ == "NotIn";
    const bool exists_op = e.operator_ == "Exists" || e.operator_ == "DoesNotExist";
    if (!set_op && !exists_op) {
      return Status::Error(where + ".operator: \"" + e.operator_ + "\" is not a valid label selector operator", EINVAL);
    }
    if (set_op && e.values.empty()) {
      return Status::Error(where + ".values: for 'in', 'notin' operators, values set can't be empty", EINVAL);
    }
    if (exists_op && !e.values.empty()) {
      return Status::Error(where + ".values: values set must be empty for exists and does not exist", EINVAL);
    }
    auto it = labels.find(e.key);
    const bool has = it != labels.end();
    const bool listed = has && std::find(e.values.begin(), e.values.end(), it->second) != e.values.end();
    if (e.operator_ == "In") all = all && listed;
    if (e.operator_ == "NotIn") all = all && !listed;
    if (e.operator_ == "Exists") all = all && has;
    if (e.operator_ == "DoesNotExist") all = all && !has;
  }
  return all;
}

}  // namespace knode::api
