#include "peer/message.h"

#include "absl/strings/str_cat.h"
#include "common/unicode.h"
#include "common/utf8.h"
#include "registry/groups/group_state.h"

namespace chat::peer {

absl::Status ValidateMessageText(const std::string& text) {
  if (text.empty()) return absl::InvalidArgumentError("message is empty");
  if (text.size() > kMaxMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "message is ", text.size(), " bytes; the limit is ", kMaxMessageBytes));
  }
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError("message is not valid UTF-8 text");
  }
  return absl::OkStatus();
}

std::string PrintableText(const std::string& text) { return VisibleText(text); }

std::string PrintableName(const std::string& name) { return VisibleName(name); }

bool HasGroupFields(const ::Message& proto) {
  return !proto.group_id().empty() || proto.group_version() != 0 ||
         !proto.group_state_hash().empty() || proto.group_change() ||
         proto.group_leave();
}

absl::Status ValidateGroupFields(const ::Message& proto) {
  if (!HasGroupFields(proto)) return absl::OkStatus();
  if (!registry::IsGroupId(proto.group_id())) {
    return absl::InvalidArgumentError(
        absl::StrCat("group_id must be ", registry::kGroupIdHexChars,
                     " lowercase hex characters"));
  }
  if (proto.group_version() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "group_version is ", proto.group_version(), "; it must be 1 or more"));
  }
  if (proto.group_state_hash().size() != registry::kGroupHashBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("group_state_hash is ", proto.group_state_hash().size(),
                     " bytes, not ", registry::kGroupHashBytes));
  }
  return absl::OkStatus();
}

::Message ToProto(const ChatMessage& message) {
  ::Message proto;
  proto.set_time(message.lab_time);
  proto.set_sender(message.from);
  proto.set_msg(message.text);
  proto.set_id(message.id);
  proto.set_recipient(message.to);
  if (message.sent_at != absl::InfinitePast()) {
    proto.set_sent_at_unix_ms(absl::ToUnixMillis(message.sent_at));
  }
  proto.set_sequence(message.sequence);
  proto.set_sequence_epoch(message.sequence_epoch);
  proto.set_sequence_floor(message.sequence_floor);
  proto.set_group_id(message.group_id);
  proto.set_group_version(message.group_version);
  proto.set_group_state_hash(message.group_state_hash);
  proto.set_group_change(message.group_change);
  proto.set_group_leave(message.group_leave);
  return proto;
}

ChatMessage FromProto(const ::Message& proto) {
  ChatMessage message;
  message.lab_time = proto.time();
  message.from = proto.sender();
  message.text = proto.msg();
  message.id = proto.id();
  message.to = proto.recipient();
  if (proto.sent_at_unix_ms() > 0) {
    message.sent_at = absl::FromUnixMillis(proto.sent_at_unix_ms());
  }
  // A sequence is only usable whole: number, epoch and a floor at or below it.
  if (proto.sequence() > 0 && !proto.sequence_epoch().empty() &&
      proto.sequence_epoch().size() <= 64 && proto.sequence_floor() > 0 &&
      proto.sequence_floor() <= proto.sequence()) {
    message.sequence = proto.sequence();
    message.sequence_epoch = proto.sequence_epoch();
    message.sequence_floor = proto.sequence_floor();
  }
  if (HasGroupFields(proto) && ValidateGroupFields(proto).ok()) {
    message.group_id = proto.group_id();
    message.group_version = proto.group_version();
    message.group_state_hash = proto.group_state_hash();
    message.group_change = proto.group_change();
    message.group_leave = proto.group_leave();
  }
  return message;
}

}  // namespace chat::peer
