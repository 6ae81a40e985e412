// The few libcrypto (OpenSSL) digest functions fnrunner uses, loaded on first use (forward.c).
#include <openssl/evp.h>

// The forwarders (forward.c): call these, never libcrypto's own names.
EVP_MD_CTX *fnr_EVP_MD_CTX_new(void);
void fnr_EVP_MD_CTX_free(EVP_MD_CTX *ctx);
const EVP_MD *fnr_EVP_sha256(void);
int fnr_EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl);
int fnr_EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt);
int fnr_EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s);
