#include "iwjson.h"

#include <simdjson.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using namespace simdjson;

namespace {

struct Path {
    std::vector<std::string> segments;
};

struct Result {
    std::vector<iwj_value> values;
    bool is_list = false;
    bool found = false;
};

// Open-addressing table from a root key to the paths that start with it. Built once; probed for
// every key of every line, so it avoids allocating.
struct RootIndex {
    struct Slot {
        uint64_t hash = 0;
        std::string key;
        std::vector<int32_t> paths;
        bool used = false;
    };
    std::vector<Slot> slots = std::vector<Slot>(64);

    // Probed for every key of every line, so cheap: length and the first and last two bytes.
    // Collisions only cost a string comparison.
    static uint64_t hash_of(std::string_view s) {
        size_t n = s.size();
        if (n == 0) return 0;
        uint64_t h = n * 0x9E3779B97F4A7C15ull;
        h ^= uint64_t((unsigned char)s[0]) << 8 | (unsigned char)s[n > 1 ? 1 : 0];
        h ^= (uint64_t((unsigned char)s[n - 1]) << 16 | uint64_t((unsigned char)s[n > 1 ? n - 2 : 0]) << 24) * 0xff51afd7ed558ccdull;
        return h ^ (h >> 29);
    }
    void grow() {
        std::vector<Slot> old = std::move(slots);
        slots = std::vector<Slot>(old.size() * 2);
        for (auto &s : old) if (s.used) {
            for (int32_t p : s.paths) add(s.key, p);
        }
    }
    void add(const std::string &key, int32_t path) {
        size_t used = 0;
        for (auto &s : slots) used += s.used;
        if ((used + 1) * 2 > slots.size()) grow();
        uint64_t h = hash_of(key);
        size_t mask = slots.size() - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            Slot &s = slots[i];
            if (!s.used) { s.used = true; s.hash = h; s.key = key; s.paths.push_back(path); return; }
            if (s.hash == h && s.key == key) { s.paths.push_back(path); return; }
        }
    }
    const std::vector<int32_t> *find(std::string_view key) const {
        uint64_t h = hash_of(key);
        size_t mask = slots.size() - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            const Slot &s = slots[i];
            if (!s.used) return nullptr;
            if (s.hash == h && s.key == key) return &s.paths;
        }
    }
};

iwj_value make_value(dom::element e) {
    iwj_value v{};
    switch (e.type()) {
    case dom::element_type::NULL_VALUE: v.type = IWJ_NULL; break;
    case dom::element_type::BOOL: v.type = IWJ_BOOL; v.number = bool(e) ? 1.0 : 0.0; break;
    case dom::element_type::INT64: v.type = IWJ_NUMBER; v.number = double(int64_t(e)); break;
    case dom::element_type::UINT64: v.type = IWJ_NUMBER; v.number = double(uint64_t(e)); break;
    case dom::element_type::DOUBLE: v.type = IWJ_NUMBER; v.number = double(e); break;
    case dom::element_type::STRING: {
        std::string_view s = e;
        v.type = IWJ_STRING; v.str = s.data(); v.len = s.size();
        break;
    }
    case dom::element_type::ARRAY: v.type = IWJ_ARRAY; v.count = int32_t(dom::array(e).size()); break;
    case dom::element_type::OBJECT: v.type = IWJ_OBJECT; v.count = int32_t(dom::object(e).size()); break;
    }
    return v;
}

// Follows `segments[from...]` below `e`, projecting over arrays, appending what it finds.
void resolve(dom::element e, const std::vector<std::string> &segments, size_t from, Result &out) {
    if (e.type() == dom::element_type::ARRAY) {
        out.is_list = true;
        for (dom::element item : dom::array(e)) {
            if (from == segments.size()) {
                out.values.push_back(make_value(item));
            } else {
                resolve(item, segments, from, out);
            }
        }
        out.found = true;
        return;
    }
    if (from == segments.size()) {
        out.values.push_back(make_value(e));
        out.found = true;
        return;
    }
    if (e.type() != dom::element_type::OBJECT) return;
    dom::element child;
    if (dom::object(e).at_key(segments[from]).get(child) != SUCCESS) return;
    resolve(child, segments, from + 1, out);
}

} // namespace

struct iwj_parser {
    dom::parser parser;
    size_t max_len;
    std::unique_ptr<uint8_t[]> buffer;   // padded copy of the line, as simdjson requires
    std::vector<Path> paths;
    std::vector<Result> results;
    RootIndex root;
    const char *last_error = "";
};

extern "C" {

iwj_parser *iwj_parser_new(size_t max_len) {
    auto *p = new (std::nothrow) iwj_parser();
    if (!p) return nullptr;
    p->max_len = max_len;
    p->buffer.reset(new (std::nothrow) uint8_t[max_len + SIMDJSON_PADDING]);
    if (!p->buffer || p->parser.allocate(max_len) != SUCCESS) { delete p; return nullptr; }
    return p;
}

void iwj_parser_free(iwj_parser *p) { delete p; }

int32_t iwj_add_path(iwj_parser *p, const char *path, size_t len) {
    Path parsed;
    std::string_view s(path, len);
    size_t start = 0;
    while (true) {
        size_t dot = s.find('.', start);
        parsed.segments.emplace_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    int32_t index = int32_t(p->paths.size());
    p->root.add(parsed.segments[0], index);
    p->paths.push_back(std::move(parsed));
    p->results.emplace_back();
    return index;
}

static_assert(IWJ_PADDING >= SIMDJSON_PADDING, "IWJ_PADDING must cover simdjson's padding");

static int32_t parse_at(iwj_parser *p, const uint8_t *buf, size_t len);

int32_t iwj_parse(iwj_parser *p, const uint8_t *buf, size_t len) {
    if (len > p->max_len) {
        for (auto &r : p->results) { r.values.clear(); r.is_list = false; r.found = false; }
        p->last_error = "line longer than the configured maximum";
        return IWJ_ERR_TOO_LONG;
    }
    std::memcpy(p->buffer.get(), buf, len);
    std::memset(p->buffer.get() + len, 0, SIMDJSON_PADDING);
    return parse_at(p, p->buffer.get(), len);
}

int32_t iwj_parse_padded(iwj_parser *p, const uint8_t *buf, size_t len) {
    if (len > p->max_len) {
        for (auto &r : p->results) { r.values.clear(); r.is_list = false; r.found = false; }
        p->last_error = "line longer than the configured maximum";
        return IWJ_ERR_TOO_LONG;
    }
    return parse_at(p, buf, len);
}

static int32_t parse_at(iwj_parser *p, const uint8_t *buf, size_t len) {
    for (auto &r : p->results) { r.values.clear(); r.is_list = false; r.found = false; }
    dom::element root;
    error_code err = p->parser.parse(buf, len, false).get(root);
    if (err != SUCCESS) {
        p->last_error = error_message(err);
        return err == UTF8_ERROR ? IWJ_ERR_UTF8 : IWJ_ERR_JSON;
    }
    if (root.type() != dom::element_type::OBJECT) {
        p->last_error = "the line is valid JSON but not an object";
        return IWJ_ERR_NOT_OBJECT;
    }
    for (dom::key_value_pair field : dom::object(root)) {
        const std::vector<int32_t> *wanted = p->root.find(field.key);
        if (!wanted) continue;
        for (int32_t index : *wanted) {
            Result &r = p->results[size_t(index)];
            if (r.found) continue;  // a duplicate key: the first occurrence wins
            resolve(field.value, p->paths[size_t(index)].segments, 1, r);
            r.found = true;
        }
    }
    return IWJ_OK;
}

const char *iwj_last_error(const iwj_parser *p) { return p->last_error; }

const iwj_value *iwj_results(const iwj_parser *p, int32_t index, int32_t *count, int32_t *is_list) {
    const Result &r = p->results[size_t(index)];
    *count = int32_t(r.values.size());
    *is_list = r.is_list ? 1 : 0;
    return r.values.data();
}

}

namespace {
// simdjson's error as an IWJ_ERR_* code, its text kept as the detail.
int32_t split_error(const char *&last_error, error_code error) {
    last_error = error_message(error);
    return error == UTF8_ERROR ? IWJ_ERR_UTF8 : (error == CAPACITY ? IWJ_ERR_TOO_LONG : IWJ_ERR_JSON);
}
}  // namespace

struct iwj_splitter {
    // Allocates on first use, as large as the largest body seen (up to max_len).
    dom::parser parser;
    explicit iwj_splitter(size_t max_len) : parser(max_len) {}
    std::string records;
    std::vector<std::pair<size_t, bool>> ends;  // end offset in `records`, is an object
    const char *last_error = "";
};

iwj_splitter *iwj_splitter_new(size_t max_len) {
    try {
        return new iwj_splitter(max_len);
    } catch (...) {
        return nullptr;
    }
}

void iwj_splitter_free(iwj_splitter *s) { delete s; }

int32_t iwj_split(iwj_splitter *s, const uint8_t *buf, size_t len, size_t *count) {
    s->records.clear();
    s->ends.clear();
    *count = 0;
    try {
        dom::element root;
        auto error = s->parser.parse(buf, len).get(root);
        if (error) return split_error(s->last_error, error);
        auto add = [s](dom::element e) {
            s->records += minify(e);
            s->ends.emplace_back(s->records.size(), e.is_object());
        };
        if (root.is_array()) {
            for (dom::element e : dom::array(root)) add(e);
        } else if (root.is_object()) {
            add(root);
        } else {
            s->last_error = "the body is a JSON scalar, not an object or an array of objects";
            return IWJ_ERR_NOT_OBJECT;
        }
        *count = s->ends.size();
        return IWJ_OK;
    } catch (...) {
        s->last_error = "out of memory";
        return IWJ_ERR_TOO_LONG;
    }
}

const uint8_t *iwj_split_record(const iwj_splitter *s, size_t index, size_t *len, int32_t *is_object) {
    size_t start = index == 0 ? 0 : s->ends[index - 1].first;
    *len = s->ends[index].first - start;
    *is_object = s->ends[index].second ? 1 : 0;
    return reinterpret_cast<const uint8_t *>(s->records.data()) + start;
}

int32_t iwj_split_validate(iwj_splitter *s, const uint8_t *buf, size_t len) {
    try {
        dom::element root;
        auto error = s->parser.parse(buf, len).get(root);
        if (error) return split_error(s->last_error, error);
        if (!root.is_object()) {
            s->last_error = "the line is JSON but not an object";
            return IWJ_ERR_NOT_OBJECT;
        }
        return IWJ_OK;
    } catch (...) {
        s->last_error = "out of memory";
        return IWJ_ERR_TOO_LONG;
    }
}

size_t iwj_splitter_capacity(const iwj_splitter *s) { return s->parser.capacity(); }

const char *iwj_split_error(const iwj_splitter *s) { return s->last_error; }
