// Fuzzes the JSON writer: JsonQuote (common/json.h) of any bytes, and the
// peer's JSON lines (peer/format.h FormatJson) of events made of any bytes,
// must be valid JSON (RFC 8259, checked by the small parser below, which
// shares no code with the writer), one line each, and a quoted string of
// valid UTF-8 must read back as the same bytes.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "common/json.h"
#include "peer/format.h"
#include "tests/fuzz/fuzz_event.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF), 0 when there is none.
size_t Utf8Length(const std::string& s, size_t i) {
  auto byte = [&s](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

bool ValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A strict JSON reader that only says whether the text is JSON, and what a
// string literal decodes to.
class Reader {
 public:
  explicit Reader(const std::string& text) : s_(text) {}

  // True when the whole text is one JSON value.
  bool Document() {
    Space();
    if (!Value(0)) return false;
    Space();
    return i_ == s_.size();
  }

  // The decoded string when the whole text is one JSON string.
  std::optional<std::string> StringDocument() {
    std::string out;
    if (!String(&out) || i_ != s_.size()) return std::nullopt;
    return out;
  }

 private:
  bool Value(int depth) {
    if (depth > 64 || i_ >= s_.size()) return false;
    switch (s_[i_]) {
      case '{':
        return Object(depth);
      case '[':
        return Array(depth);
      case '"':
        return String(nullptr);
      case 't':
        return Word("true");
      case 'f':
        return Word("false");
      case 'n':
        return Word("null");
      default:
        return Number();
    }
  }

  bool Object(int depth) {
    ++i_;
    Space();
    if (Peek('}')) return ++i_, true;
    while (true) {
      Space();
      if (!String(nullptr)) return false;
      Space();
      if (!Peek(':')) return false;
      ++i_;
      Space();
      if (!Value(depth + 1)) return false;
      Space();
      if (Peek('}')) return ++i_, true;
      if (!Peek(',')) return false;
      ++i_;
    }
  }

  bool Array(int depth) {
    ++i_;
    Space();
    if (Peek(']')) return ++i_, true;
    while (true) {
      Space();
      if (!Value(depth + 1)) return false;
      Space();
      if (Peek(']')) return ++i_, true;
      if (!Peek(',')) return false;
      ++i_;
    }
  }

  bool Hex4(uint32_t* value) {
    if (i_ + 4 > s_.size()) return false;
    *value = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
      *value = *value * 16 + digit;
    }
    return true;
  }

  bool String(std::string* out) {
    if (!Peek('"')) return false;
    ++i_;
    while (i_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') return ++i_, true;
      if (c < 0x20) return false;  // Control characters must be escaped.
      if (c == '\\') {
        if (++i_ >= s_.size()) return false;
        const char e = s_[i_++];
        char plain = 0;
        switch (e) {
          case '"':
          case '\\':
          case '/':
            plain = e;
            break;
          case 'b':
            plain = '\b';
            break;
          case 'f':
            plain = '\f';
            break;
          case 'n':
            plain = '\n';
            break;
          case 'r':
            plain = '\r';
            break;
          case 't':
            plain = '\t';
            break;
          case 'u': {
            uint32_t cp;
            if (!Hex4(&cp)) return false;
            // A lone surrogate is not a character: our writer never makes
            // one (it escapes only control characters).
            if (cp >= 0xD800 && cp <= 0xDFFF) return false;
            if (out != nullptr) AppendUtf8(cp, *out);
            continue;
          }
          default:
            return false;
        }
        if (out != nullptr) out->push_back(plain);
        continue;
      }
      const size_t n = Utf8Length(s_, i_);
      if (n == 0) return false;  // JSON text is UTF-8.
      if (out != nullptr) out->append(s_, i_, n);
      i_ += n;
    }
    return false;
  }

  bool Number() {
    const size_t start = i_;
    if (Peek('-')) ++i_;
    if (Peek('0')) {
      ++i_;
    } else if (!Digits()) {
      return false;
    }
    if (Peek('.')) {
      ++i_;
      if (!Digits()) return false;
    }
    if (Peek('e') || Peek('E')) {
      ++i_;
      if (Peek('+') || Peek('-')) ++i_;
      if (!Digits()) return false;
    }
    return i_ > start;
  }

  bool Digits() {
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }

  bool Word(const char* word) {
    const std::string w(word);
    if (s_.compare(i_, w.size(), w) != 0) return false;
    i_ += w.size();
    return true;
  }

  void Space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' ||
                              s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }

  bool Peek(char c) const { return i_ < s_.size() && s_[i_] == c; }

  const std::string& s_;
  size_t i_ = 0;
};

void CheckJsonLine(const std::string& line) {
  Check(line.find('\n') == std::string::npos);  // JSON lines: one per event.
  Check(Reader(line).Document());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  // Any bytes, quoted: one JSON string; valid UTF-8 reads back unchanged.
  const std::string quoted = chat::JsonQuote(input);
  CheckJsonLine(quoted);
  std::optional<std::string> decoded = Reader(quoted).StringDocument();
  Check(decoded.has_value());
  if (ValidUtf8(input)) Check(*decoded == input);

  // An event made of any bytes, as the peer prints it with --json.
  FuzzedDataProvider provider(data, size);
  const chat::peer::PeerEvent event = chat::fuzz::ConsumeEvent(provider);
  std::string line = chat::peer::FormatJson(event);
  Check(!line.empty() && line.back() == '\n');
  line.pop_back();
  CheckJsonLine(line);
  return 0;
}
