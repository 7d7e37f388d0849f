/* The C ABI of a mrkv MapReduce application plugin (binding: plugins are built outside the project).
 *
 * A plugin is a shared library, loaded with dlopen(), that exports three C symbols and optionally a
 * fourth, mrkv_combine. It can be written in C, C++ or Rust. `mrkv worker --app ./myapp.so` and `mrkv sequential --app ./myapp.so` load it.
 *
 *  - mrkv_plugin_abi() returns MRKV_PLUGIN_ABI_VERSION (1). Any other value is refused.
 *  - mrkv_map() is called once per input file with the file name exactly as given to the coordinator
 *    and the file's whole contents; it calls emit(sink, ...) for every key/value pair it produces.
 *  - mrkv_reduce() is called once per distinct key with every value emitted for it (in no particular
 *    order) and emits exactly one pair: the key and its output, which becomes the line "key output".
 *  - mrkv_combine() is optional (a plugin without it works as before, and the ABI version stays 1).
 *    When exported, it is called once per distinct key of ONE map task's output, with every value that
 *    task emitted for the key, before that output is written; the pairs it emits (any number, usually
 *    one) replace those values and go to the partition of their own key. Reduce must accept what it
 *    emits as values: e.g. a word count's combine emits (word, partial sum). It cuts the bytes that
 *    reducers read or fetch. It has mrkv_reduce's signature.
 *
 * Strings are byte ranges (pointer + length), not NUL-terminated, except `filename` and the `key` of
 * mrkv_reduce and mrkv_combine, which are also NUL-terminated for convenience. emit() copies what it is given; the
 * pointers passed to a plugin are valid only for the duration of the call. Calls come from one thread
 * at a time per process.
 */
#ifndef MRKV_PLUGIN_H
#define MRKV_PLUGIN_H

#include <stddef.h>

#define MRKV_PLUGIN_ABI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*mrkv_emit_fn)(void *sink, const char *key, size_t key_len, const char *value, size_t value_len);

int mrkv_plugin_abi(void); /* returns 1 */
void mrkv_map(const char *filename, const char *contents, size_t contents_len, mrkv_emit_fn emit, void *sink);
void mrkv_reduce(const char *key, size_t key_len, size_t n_values, const char *const *values,
                 const size_t *value_lens, mrkv_emit_fn emit, void *sink); /* emits exactly one pair */
/* Optional. */
void mrkv_combine(const char *key, size_t key_len, size_t n_values, const char *const *values,
                  const size_t *value_lens, mrkv_emit_fn emit, void *sink); /* emits any number of pairs */

#ifdef __cplusplus
}
#endif

#endif /* MRKV_PLUGIN_H */
