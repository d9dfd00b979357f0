// nft's userdata: type-length-value notes the kernel stores for user space and never
// reads (comments, how to print a set's keys). One byte type, one byte length.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "knode/dataplane/nftables.h"

namespace knode::nftables::udata {

// The longest value one note can carry (its length is one byte).
inline constexpr size_t kMaxValueLength = 255;
// The longest comment nft writes (NFTNL_UDATA_COMMENT_MAXLEN), without its NUL: it keeps
// a note within the kernel's NFT_USERDATA_MAXLEN (256 bytes for all notes together).
inline constexpr size_t kMaxCommentLength = 128;

// Appends one note; a value longer than kMaxValueLength cannot be encoded and is left
// out (false), rather than written with a wrapped length that garbles what follows.
bool put(Bytes& out, uint8_t type, std::string_view value);
void put_u32(Bytes& out, uint8_t type, uint32_t host_value);
// A string with its terminating NUL, as nft stores comments; cut to kMaxCommentLength
// bytes (see clamp_comment).
void put_string(Bytes& out, uint8_t type, const std::string& s);
// `s` cut to at most kMaxCommentLength bytes, at a UTF-8 character boundary and before any
// NUL (which would end it on reading): what put_string stores and comment_of gives back.
std::string clamp_comment(std::string_view s);

// Calls fn for each TLV; false when the bytes are not well formed (fn has then seen the
// notes before the first bad one).
bool each(std::string_view in, const std::function<void(uint8_t type, std::string_view value)>& fn);
std::string string_of(std::string_view value);  // without the NUL
uint32_t u32_of(std::string_view value);

// The readers below take nothing from a note that is not well formed: a length byte that
// runs past the end means the rest cannot be told apart from text (an older knode wrote
// a 255+ byte comment's length modulo 256).

// A comment-only note (tables, chains, rules: type 0); empty comment, empty note.
Bytes comment_note(const std::string& comment);
std::string comment_of(std::string_view note);

// nft's typeof notes (a set's key_typeof, data_typeof): [0: expression type][1: its data,
// nested notes]. The expression types and payload fields knode writes and prints.
inline constexpr uint32_t kExprVerdict = 1, kExprPayload = 7, kExprConcat = 13, kExprNumgen = 23;
// Payload data: [0: protocol description][1: field]; ip is description 12, th 11.
inline constexpr uint32_t kDescIp = 12, kDescTh = 11, kIpSaddr = 11, kIpDaddr = 12, kThDport = 2;
// Numgen data: [0: mode][1: modulus][2: offset]. Concatenation data: its parts, numbered.

Bytes set_note(const SetUserdata& u);
SetUserdata parse_set_note(std::string_view note);

Bytes element_note(const Element& e);
void parse_element_note(std::string_view note, Element* e);

}  // namespace knode::nftables::udata
