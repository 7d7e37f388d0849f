// This file contains the tokenizer shared by the built-in wc and indexer applications: a word is a
// maximal non-empty run of Unicode letters in UTF-8 text, as in the lab (Go's unicode.IsLetter over
// the runes of the string). Anything else separates words: digits, punctuation, apostrophes, and every
// byte that is not part of a well-formed UTF-8 sequence.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace mrkv::mr {

// True if `c` has Unicode general category L (Lu, Ll, Lt, Lm or Lo), according to a built-in table of
// the Unicode 14.0 character database. A fixed table rather than <cwctype>, so the answer does not
// depend on the locale or the C library the binary runs with.
bool is_letter(char32_t c) noexcept;

namespace detail {

// Looks at the UTF-8 sequence that starts with the non-ASCII byte text[pos]. Returns how many bytes it
// takes and stores in `letter` whether it decodes to a letter. A malformed sequence (stray continuation
// byte, truncated or overlong sequence, surrogate, code point above U+10FFFF) counts as one non-letter
// byte, so decoding resynchronises on the next byte exactly as Go's range-over-string does.
std::size_t scan_non_ascii(std::string_view text, std::size_t pos, bool& letter) noexcept;

constexpr bool is_ascii_letter(unsigned char b) noexcept { return static_cast<unsigned char>((b | 0x20) - 'a') < 26; }

// What a byte tells on its own: 0 an ASCII non-letter, 1 an ASCII letter, 2 the start (or middle) of
// a multi-byte sequence that must be decoded.
inline constexpr auto byte_class = [] {
  std::array<unsigned char, 256> t{};
  for (int b = 0; b < 256; ++b) t[b] = b >= 0x80 ? 2 : is_ascii_letter(static_cast<unsigned char>(b)) ? 1 : 0;
  return t;
}();

}  // namespace detail

// Calls on_word(std::string_view) for every word of `text`, in order. The views point into `text`.
// Inline because wc calls it for every byte of its input: runs of ASCII separators and of ASCII
// letters are skipped by tight table-driven loops, and only non-ASCII bytes take the decoder.
template <class F>
void for_each_word(std::string_view text, F&& on_word) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  bool letter = false;
  while (i < n) {
    while (i < n && detail::byte_class[p[i]] == 0) ++i;
    if (i == n) return;
    if (p[i] >= 0x80) {
      const std::size_t len = detail::scan_non_ascii(text, i, letter);
      if (!letter) {
        i += len;
        continue;
      }
    }
    // text[i] starts a letter, hence a word that lasts as long as the letters do.
    const std::size_t start = i;
    for (;;) {
      while (i < n && detail::byte_class[p[i]] == 1) ++i;
      if (i == n || p[i] < 0x80) break;
      const std::size_t len = detail::scan_non_ascii(text, i, letter);
      if (!letter) break;
      i += len;
    }
    on_word(text.substr(start, i - start));
  }
}

}  // namespace mrkv::mr
