// Forwarders for libcrypto's SHA-256 path: the library is dlopen'ed on first use, so commands
// that hash nothing do not load it. Without it, fnr_EVP_MD_CTX_new returns NULL and digests fail.
// They are named fnr_*: a forwarder named like libcrypto's own symbol would stand in for it for
// libcurl and libssl, which link libcrypto. The library is loaded once (pthread_once) and each
// pointer is cached atomically, so concurrent first calls are safe.
#define _GNU_SOURCE
#include "copenssl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

static void *handle;

static void load(void) { handle = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL); }

static void *symbol(const char *name) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, load);
    return handle ? dlsym(handle, name) : NULL;
}

// The function `name` of type `type`, resolved once and cached in `cache`.
#define RESOLVE(cache, type, name)                                                  \
    type resolved = __atomic_load_n(&cache, __ATOMIC_ACQUIRE);                     \
    if (!resolved) {                                                               \
        resolved = (type)symbol(name);                                             \
        __atomic_store_n(&cache, resolved, __ATOMIC_RELEASE);                      \
    }

typedef EVP_MD_CTX *(*ctx_new_fn)(void);
typedef void (*ctx_free_fn)(EVP_MD_CTX *);
typedef const EVP_MD *(*sha256_fn)(void);
typedef int (*init_fn)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
typedef int (*update_fn)(EVP_MD_CTX *, const void *, size_t);
typedef int (*final_fn)(EVP_MD_CTX *, unsigned char *, unsigned int *);

EVP_MD_CTX *fnr_EVP_MD_CTX_new(void) {
    static ctx_new_fn fp;
    RESOLVE(fp, ctx_new_fn, "EVP_MD_CTX_new")
    return resolved ? resolved() : NULL;
}

void fnr_EVP_MD_CTX_free(EVP_MD_CTX *ctx) {
    static ctx_free_fn fp;
    RESOLVE(fp, ctx_free_fn, "EVP_MD_CTX_free")
    if (resolved) resolved(ctx);
}

const EVP_MD *fnr_EVP_sha256(void) {
    static sha256_fn fp;
    RESOLVE(fp, sha256_fn, "EVP_sha256")
    return resolved ? resolved() : NULL;
}

int fnr_EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl) {
    static init_fn fp;
    RESOLVE(fp, init_fn, "EVP_DigestInit_ex")
    return resolved ? resolved(ctx, type, impl) : 0;
}

int fnr_EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt) {
    static update_fn fp;
    RESOLVE(fp, update_fn, "EVP_DigestUpdate")
    return resolved ? resolved(ctx, d, cnt) : 0;
}

int fnr_EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s) {
    static final_fn fp;
    RESOLVE(fp, final_fn, "EVP_DigestFinal_ex")
    return resolved ? resolved(ctx, md, s) : 0;
}
