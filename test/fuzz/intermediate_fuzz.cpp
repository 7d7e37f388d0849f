// intermediate_fuzz: the reduce worker's reader of intermediate files (mr::decode_intermediate).
//
// The first input byte picks the mode, the rest is the payload:
//   - even: the payload is a whole file image, decoded as is. This covers the header, footer, length
//     and checksum checks; almost nothing random gets past the checksum.
//   - odd: the payload is the record area only. The fuzzer wraps it in a valid header and a footer with
//     a valid checksum (mr::intermediate_checksum), taking the record count from the payload's first
//     byte (0-255) when there is one, so the record parser itself sees hostile varints and lengths.
//
// Invariants (abort() if one fails):
//   - decode_intermediate either succeeds or throws task_file_error of kind `corrupt`; nothing else;
//   - a failed decode leaves `out` exactly as it was (a sentinel pair stays alone);
//   - every decoded key and value lies inside the image (ASan also catches reads outside it);
//   - a successful decode round-trips: its pairs, re-encoded with intermediate_encoder, decode to the
//     same pairs, in an image no longer than the original. (Not byte for byte the same image: the
//     decoder accepts overlong varints such as 80 00 for 0, which the encoder never writes. That is
//     allowed by the format and harmless, since the checksum covers every byte.)
//
// Run: scripts/fuzz.sh, or build/fuzz/test/fuzz/intermediate_fuzz CORPUS_COPY test/fuzz/corpus/intermediate_fuzz
#include "mrkv/mr/task_files.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace mrkv::mr;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "\n*** intermediate_fuzz: %s\n", what);
  std::abort();
}

void put_le64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// header + body + count + checksum + end marker, as intermediate_encoder::finish() lays them out.
std::string wrap(std::string_view body, std::uint64_t count) {
  std::string image("mrkvint\x01", 8);
  image.append(body);
  put_le64(image, count);
  put_le64(image, intermediate_checksum(image));
  image.append("mrkvend\n");
  return image;
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check(std::string_view image) {
  const kv_view sentinel{"sentinel-key", "sentinel-value"};
  std::vector<kv_view> out{sentinel};
  try {
    decode_intermediate(image, "fuzz", out);
  } catch (const task_file_error& e) {
    if (e.why() != task_file_error::kind::corrupt) fail("a decode failed with a kind other than corrupt");
    if (out.size() != 1 || out[0].key.data() != sentinel.key.data() || out[0].value.data() != sentinel.value.data())
      fail("a failed decode changed its output vector");
    return;
  }
  if (out.empty() || out[0].key.data() != sentinel.key.data()) fail("a decode dropped what was in its output vector");
  intermediate_encoder again;
  for (std::size_t i = 1; i < out.size(); ++i) {
    if (!inside(out[i].key, image) || !inside(out[i].value, image)) fail("a decoded view points outside the image");
    again.add(out[i].key, out[i].value);
  }
  const std::string image2 = again.finish();
  if (image2.size() > image.size()) fail("re-encoding decoded pairs made a longer image");
  std::vector<kv_view> out2;
  try {
    decode_intermediate(image2, "fuzz re-encoded", out2);
  } catch (const task_file_error& e) {
    fail("an image made by intermediate_encoder does not decode");
  }
  if (out2.size() != out.size() - 1) fail("re-encoded pairs decode to another number of pairs");
  for (std::size_t i = 0; i < out2.size(); ++i)
    if (out2[i].key != out[i + 1].key || out2[i].value != out[i + 1].value)
      fail("re-encoded pairs decode to other pairs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    // Copy into a buffer of exactly the payload's size, so ASan sees any read past its end.
    std::vector<char> exact(payload.begin(), payload.end());
    check(std::string_view(exact.data(), exact.size()));
  } else {
    std::uint64_t count = 0;
    if (!payload.empty()) {
      count = static_cast<unsigned char>(payload[0]);
      payload.remove_prefix(1);
    }
    const std::string image = wrap(payload, count);
    std::vector<char> exact(image.begin(), image.end());
    check(std::string_view(exact.data(), exact.size()));
  }
  return 0;
}
