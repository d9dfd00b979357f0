// The files of configMap, secret, downwardAPI and projected volumes, built as upstream's
// MakePayload (configmap, secret) and CollectData (downwardapi) and the projected plugin
// build them: pure functions of the pod, the volume and the objects they read.
#pragma once

#include <string>

#include "knode/api/pod.h"
#include "knode/status.h"
#include "pod/env.h"
#include "volume/atomic_writer.h"

namespace knode::kubelet::volume {

// The payload of `volume` (one of the four kinds above), `field` being where it sits in the
// pod ("spec.volumes[2]"). An error starts with the field it is about:
//   spec.volumes[2].configMap.name: configmap "app" not found
//   spec.volumes[2].secret.items[0].key: references non-existent secret key: tls.crt
Result<Payload> make_payload(const api::Pod& pod, const api::Volume& volume,
                             const std::string& field, const EnvLookup& lookup);

// Whether `mode` fits a file mode as the API allows it (0 to 0777).
bool valid_file_mode(int32_t mode);

}  // namespace knode::kubelet::volume
