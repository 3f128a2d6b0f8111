// HMAC-SHA256 from Debian's OpenSSL (libssl-dev), for signing webhook bodies.
#include <openssl/evp.h>
#include <openssl/hmac.h>
