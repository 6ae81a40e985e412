// Forwarders for libcrypto's SHA-256 path: the library is dlopen'ed on first use, so commands
// that hash nothing do not load it. Without it, EVP_MD_CTX_new returns NULL and digests fail.
#define _GNU_SOURCE
#include "copenssl.h"

#include <dlfcn.h>
#include <stddef.h>

static void *symbol(const char *name) {
    static void *handle;
    void *h = __atomic_load_n(&handle, __ATOMIC_ACQUIRE);
    if (!h) {
        h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
        __atomic_store_n(&handle, h, __ATOMIC_RELEASE);
    }
    return h ? dlsym(h, name) : NULL;
}

EVP_MD_CTX *EVP_MD_CTX_new(void) {
    static EVP_MD_CTX *(*fp)(void);
    if (!fp) fp = (EVP_MD_CTX * (*)(void)) symbol("EVP_MD_CTX_new");
    return fp ? fp() : NULL;
}

void EVP_MD_CTX_free(EVP_MD_CTX *ctx) {
    static void (*fp)(EVP_MD_CTX *);
    if (!fp) fp = (void (*)(EVP_MD_CTX *))symbol("EVP_MD_CTX_free");
    if (fp) fp(ctx);
}

const EVP_MD *EVP_sha256(void) {
    static const EVP_MD *(*fp)(void);
    if (!fp) fp = (const EVP_MD *(*)(void))symbol("EVP_sha256");
    return fp ? fp() : NULL;
}

int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl) {
    static int (*fp)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
    if (!fp) fp = (int (*)(EVP_MD_CTX *, const EVP_MD *, ENGINE *))symbol("EVP_DigestInit_ex");
    return fp ? fp(ctx, type, impl) : 0;
}

int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt) {
    static int (*fp)(EVP_MD_CTX *, const void *, size_t);
    if (!fp) fp = (int (*)(EVP_MD_CTX *, const void *, size_t))symbol("EVP_DigestUpdate");
    return fp ? fp(ctx, d, cnt) : 0;
}

int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s) {
    static int (*fp)(EVP_MD_CTX *, unsigned char *, unsigned int *);
    if (!fp) fp = (int (*)(EVP_MD_CTX *, unsigned char *, unsigned int *))symbol("EVP_DigestFinal_ex");
    return fp ? fp(ctx, md, s) : 0;
}
