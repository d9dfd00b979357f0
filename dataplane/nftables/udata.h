// nft's userdata: type-length-value notes the kernel stores for user space and never
// reads (comments, how to print a set's keys). One byte type, one byte length.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "knode/dataplane/nftables.h"

namespace knode::nftables::udata {

void put(Bytes& out, uint8_t type, std::string_view value);
void put_u32(Bytes& out, uint8_t type, uint32_t host_value);
// A string with its terminating NUL, as nft stores comments.
void put_string(Bytes& out, uint8_t type, const std::string& s);

// Calls fn for each TLV; false when the bytes are not well formed.
bool each(std::string_view in, const std::function<void(uint8_t type, std::string_view value)>& fn);
std::string string_of(std::string_view value);  // without the NUL
uint32_t u32_of(std::string_view value);

// A comment-only note (tables, chains, rules: type 0); empty comment, empty note.
Bytes comment_note(const std::string& comment);
std::string comment_of(std::string_view note);

Bytes set_note(const SetUserdata& u);
SetUserdata parse_set_note(std::string_view note);

Bytes element_note(const Element& e);
void parse_element_note(std::string_view note, Element* e);

}  // namespace knode::nftables::udata
