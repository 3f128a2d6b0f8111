// Reference for scripts/bench: how fast Debian's simdjson merely parses the same JSON lines, one
// document per line, on one core, the file in memory. iw-detect's goal is half this rate.
//   simdjson-parse-only FILE                    DOM: full validation, every value built
//   simdjson-parse-only --one-field NAME FILE   On-Demand: the whole line indexed and validated
//                                               structurally, one top-level field read (as a
//                                               string, number or boolean)
#include <simdjson.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

// Calls parse(pos, length) for each line, in five passes over the file; prints the median pass.
template <typename Parse>
static void each_line(const std::string &data, size_t size, const char *what, Parse parse) {
    const int passes = 5;
    std::vector<double> seconds;
    size_t lines = 0, errors = 0;
    for (int p = 0; p < passes; p++) {
        lines = errors = 0;
        auto start = std::chrono::steady_clock::now();
        size_t pos = 0;
        while (pos < size) {
            size_t end = data.find('\n', pos);
            if (end == std::string::npos || end > size) end = size;
            if (!parse(pos, end - pos)) errors++;
            lines++;
            pos = end + 1;
        }
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    double s = seconds[passes / 2];
    std::printf("simdjson %s: %.0f lines/s, %.1f MB/s (%zu lines, %zu errors, file in memory, median of %d passes)\n",
                what, lines / s, size / 1e6 / s, lines, errors, passes);
}

int main(int argc, char **argv) {
    const char *field = nullptr;
    int arg = 1;
    if (argc >= 4 && std::strcmp(argv[1], "--one-field") == 0) { field = argv[2]; arg = 3; }
    if (arg >= argc) { std::fprintf(stderr, "usage: %s [--one-field NAME] FILE\n", argv[0]); return 2; }
    std::ifstream in(argv[arg], std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t size = data.size();
    data.append(simdjson::SIMDJSON_PADDING, '\0');
    const auto *bytes = reinterpret_cast<const uint8_t *>(data.data());
    if (!field) {
        simdjson::dom::parser parser;
        each_line(data, size, "DOM parse only", [&](size_t pos, size_t len) {
            simdjson::dom::element doc;
            return !parser.parse(bytes + pos, len, false).get(doc);
        });
        return 0;
    }
    simdjson::ondemand::parser parser;
    std::string what = std::string("On-Demand one field (") + field + ")";
    size_t sink = 0;
    each_line(data, size, what.c_str(), [&](size_t pos, size_t len) {
        simdjson::ondemand::document doc;
        if (parser.iterate(bytes + pos, len, len + simdjson::SIMDJSON_PADDING).get(doc)) return false;
        simdjson::ondemand::value v;
        if (doc.find_field_unordered(field).get(v)) return false;
        std::string_view s;
        double d;
        bool b;
        if (!v.get_string().get(s)) { sink += s.size(); return true; }
        if (!v.get_double().get(d)) { sink += d > 0; return true; }
        if (!v.get_bool().get(b)) { sink += b; return true; }
        return false;
    });
    return sink == size_t(-1);  // keeps the reads from being optimised away
}
