// The few libcrypto (OpenSSL) digest functions fnrunner uses, loaded on first use (forward.c).
#include <openssl/evp.h>
