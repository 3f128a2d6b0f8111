// Reference for scripts/bench: how fast Debian's simdjson merely parses (DOM, full validation)
// the same JSON lines, one document per line, on one core. iw-detect's goal is half this rate.
#include <simdjson.h>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    if (argc < 2) { std::fprintf(stderr, "usage: %s FILE\n", argv[0]); return 2; }
    std::ifstream in(argv[1], std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    data.append(simdjson::SIMDJSON_PADDING, '\0');
    size_t size = data.size() - simdjson::SIMDJSON_PADDING;
    simdjson::dom::parser parser;
    size_t lines = 0, errors = 0;
    auto start = std::chrono::steady_clock::now();
    size_t pos = 0;
    while (pos < size) {
        size_t end = data.find('\n', pos);
        if (end == std::string::npos || end > size) end = size;
        simdjson::dom::element doc;
        if (parser.parse(reinterpret_cast<const uint8_t *>(data.data() + pos), end - pos, false).get(doc)) errors++;
        lines++;
        pos = end + 1;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("simdjson DOM parse only: %.0f lines/s, %.1f MB/s (%zu lines, %zu errors, file in memory)\n",
                lines / s, size / 1e6 / s, lines, errors);
}
