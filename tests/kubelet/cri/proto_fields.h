// Which fields of a message are left unset, walked through protobuf reflection: a
// conversion that forgets a field shows up here by the field's path ("linux.cgroup_parent",
// "port_mappings[1].host_ip"). proto3 scalars count as unset at their zero value, so tests
// fill structs with non-zero values.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <string>
#include <vector>

namespace knode::cri::testing {

inline void collect_unset(const google::protobuf::Message& m, const std::string& prefix,
                          std::vector<std::string>* out) {
  using google::protobuf::FieldDescriptor;
  const auto* desc = m.GetDescriptor();
  const auto* refl = m.GetReflection();
  for (int i = 0; i < desc->field_count(); ++i) {
    const FieldDescriptor* f = desc->field(i);
    const std::string path = prefix + f->name();
    if (f->is_repeated()) {
      const int n = refl->FieldSize(m, f);
      if (n == 0) {
        out->push_back(path);
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_map()) {
        for (int j = 0; j < n; ++j) {
          collect_unset(refl->GetRepeatedMessage(m, f, j), path + "[" + std::to_string(j) + "].",
                        out);
        }
      }
    } else if (!refl->HasField(m, f)) {
      out->push_back(path);
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      collect_unset(refl->GetMessage(m, f), path + ".", out);
    }
  }
}

inline std::vector<std::string> unset_fields(const google::protobuf::Message& m) {
  std::vector<std::string> out;
  collect_unset(m, "", &out);
  return out;
}

}  // namespace knode::cri::testing
