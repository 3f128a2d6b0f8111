// A plain C view of simdjson's DOM parser for iw-detect.
//
// One parser validates a whole line (structure, UTF-8, numbers) and then extracts the values of
// a fixed set of dotted paths that were registered up front. Strings point into the parser's own
// memory and stay valid until the next call to iwj_parse.
#ifndef IWJSON_H
#define IWJSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct iwj_parser iwj_parser;

/// The JSON type of one extracted value.
enum {
    IWJ_MISSING = 0,
    IWJ_NULL = 1,
    IWJ_BOOL = 2,
    IWJ_NUMBER = 3,
    IWJ_STRING = 4,
    IWJ_ARRAY = 5,
    IWJ_OBJECT = 6,
};

/// Outcome of iwj_parse.
enum {
    IWJ_OK = 0,
    IWJ_ERR_UTF8 = 1,
    IWJ_ERR_JSON = 2,
    IWJ_ERR_NOT_OBJECT = 3,
    IWJ_ERR_TOO_LONG = 4,
};

typedef struct {
    int32_t type;       ///< one of IWJ_MISSING … IWJ_OBJECT
    int32_t count;      ///< element count of an IWJ_ARRAY or IWJ_OBJECT
    double number;      ///< IWJ_NUMBER value, or 1/0 for IWJ_BOOL
    const char *str;    ///< IWJ_STRING bytes (valid UTF-8, not NUL-terminated)
    size_t len;         ///< IWJ_STRING length in bytes
} iwj_value;

/// Creates a parser for lines of at most `max_len` bytes. Returns NULL on allocation failure.
iwj_parser *iwj_parser_new(size_t max_len);
void iwj_parser_free(iwj_parser *p);

/// Registers a dotted path ("tool_calls.name"); returns its index. Where a path crosses an array,
/// it projects over the array's elements and yields a list.
int32_t iwj_add_path(iwj_parser *p, const char *path, size_t len);

/// Validates `len` bytes as one JSON document whose root must be an object, then extracts every
/// registered path. Returns IWJ_OK or an IWJ_ERR_* code; see iwj_last_error for detail.
int32_t iwj_parse(iwj_parser *p, const uint8_t *buf, size_t len);

/// Like iwj_parse, but without copying: the caller guarantees that IWJ_PADDING bytes after
/// `buf + len` are readable (their content does not matter).
int32_t iwj_parse_padded(iwj_parser *p, const uint8_t *buf, size_t len);

/// Bytes that must be readable after a line passed to iwj_parse_padded.
#define IWJ_PADDING 64

/// The detail of the last failed parse (a static string, e.g. simdjson's error text).
const char *iwj_last_error(const iwj_parser *p);

/// After a successful parse: the values found for path `index`. `*is_list` is set when the path
/// crossed or ended at an array (its values are then the list's elements, possibly none).
const iwj_value *iwj_results(const iwj_parser *p, int32_t index, int32_t *count, int32_t *is_list);

/// Splits HTTP request bodies into records (the HTTP input of `iw-detect serve`).
typedef struct iwj_splitter iwj_splitter;

/// Creates a splitter for bodies of at most `max_len` bytes. Returns NULL on allocation failure.
iwj_splitter *iwj_splitter_new(size_t max_len);
void iwj_splitter_free(iwj_splitter *s);

/// Parses `len` bytes as one JSON document. An object becomes one record, an array one record
/// per element; each record is minified (one line). Returns IWJ_OK with `*count` records, or an
/// IWJ_ERR_* code when the body is not one JSON document (it may still be NDJSON) or its root is
/// a scalar (IWJ_ERR_NOT_OBJECT).
int32_t iwj_split(iwj_splitter *s, const uint8_t *buf, size_t len, size_t *count);

/// After a successful iwj_split: record `index` (valid until the next call), and whether it is an object.
const uint8_t *iwj_split_record(const iwj_splitter *s, size_t index, size_t *len, int32_t *is_object);

/// Validates `len` bytes as one JSON document whose root is an object (an NDJSON line); returns
/// IWJ_OK or an IWJ_ERR_* code.
int32_t iwj_split_validate(iwj_splitter *s, const uint8_t *buf, size_t len);

/// The bytes the splitter's parser holds now (it grows with the largest body it has parsed).
size_t iwj_splitter_capacity(const iwj_splitter *s);

/// The detail of the last failed split.
const char *iwj_split_error(const iwj_splitter *s);

#ifdef __cplusplus
}
#endif

#endif
