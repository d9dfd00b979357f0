// PEM text as the kubelet's trust bundle and pod certificate volumes handle it: the DER of
// each block (any type, headers and text between blocks ignored), and CERTIFICATE blocks
// written back as Go's encoding/pem writes them (64 columns).
#pragma once

#include <string>
#include <vector>

#include "knode/status.h"

namespace knode::kubelet {

// The DER bytes of each PEM block of `text`, in order. A block without its END line or
// whose body is not base64 is an error.
Result<std::vector<std::string>> pem_blocks(const std::string& text);

std::string pem_certificate(const std::string& der);

// Every block of `chain` re-encoded as a CERTIFICATE block, in order (what is between and
// around them dropped).
Result<std::string> clean_certificate_chain(const std::string& chain);

}  // namespace knode::kubelet
