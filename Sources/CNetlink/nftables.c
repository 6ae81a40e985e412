// nftables through libnftables (Debian's libnftables1), loaded on first use so that nodes whose
// functions have no bridge never load it. nft's own command syntax is its stable interface.
#define _GNU_SOURCE
#include "rn_netlink.h"
#include "netns_run.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

struct nft_ctx;

static struct {
    struct nft_ctx *(*ctx_new)(uint32_t);
    void (*ctx_free)(struct nft_ctx *);
    int (*buffer_output)(struct nft_ctx *);
    int (*buffer_error)(struct nft_ctx *);
    const char *(*get_error)(struct nft_ctx *);
    int (*run)(struct nft_ctx *, const char *);
} nft;
static int nft_loaded;
static char nft_load_error[256];
static pthread_once_t nft_once = PTHREAD_ONCE_INIT;
// Older libnftables keep global state (the parser's, the cache's): one run at a time.
static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

static void load_nftables(void) {
    void *h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();  // per thread and read once: kept for every caller
        snprintf(nft_load_error, sizeof nft_load_error, "%s", why ? why : "unknown error");
        return;
    }
    nft.ctx_new = (struct nft_ctx * (*)(uint32_t)) dlsym(h, "nft_ctx_new");
    nft.ctx_free = (void (*)(struct nft_ctx *))dlsym(h, "nft_ctx_free");
    nft.buffer_output = (int (*)(struct nft_ctx *))dlsym(h, "nft_ctx_buffer_output");
    nft.buffer_error = (int (*)(struct nft_ctx *))dlsym(h, "nft_ctx_buffer_error");
    nft.get_error = (const char *(*)(struct nft_ctx *))dlsym(h, "nft_ctx_get_error_buffer");
    nft.run = (int (*)(struct nft_ctx *, const char *))dlsym(h, "nft_run_cmd_from_buffer");
    nft_loaded = nft.ctx_new && nft.ctx_free && nft.buffer_output && nft.buffer_error && nft.get_error && nft.run;
}

typedef struct {
    const char *commands;
    char *error;
    size_t error_len;
} rn_nft_job;

static int run_nft(void *p) {
    rn_nft_job *job = p;
    struct nft_ctx *ctx = nft.ctx_new(0);
    if (!ctx) return -ENOMEM;
    nft.buffer_output(ctx);
    nft.buffer_error(ctx);
    int rc = nft.run(ctx, job->commands);
    if (rc != 0 && job->error && job->error_len > 0) {
        const char *message = nft.get_error(ctx);
        snprintf(job->error, job->error_len, "%s", message ? message : "");
    }
    nft.ctx_free(ctx);
    return rc == 0 ? 0 : -EINVAL;
}

int rn_nft_run(int nsfd, const char *commands, char *error, size_t error_len) {
    pthread_once(&nft_once, load_nftables);
    if (error && error_len > 0) error[0] = 0;
    if (!nft_loaded) {
        if (error && error_len > 0) snprintf(error, error_len, "libnftables.so.1 cannot be loaded: %s", nft_load_error);
        return -ENOSYS;
    }
    rn_nft_job job = {commands, error, error_len};
    pthread_mutex_lock(&nft_lock);
    int rc = rn_netns_run_with_low_descriptors(nsfd, run_nft, &job);
    pthread_mutex_unlock(&nft_lock);
    // A failure before nftables ran (the thread, the namespace, the descriptor table) has no
    // message of nftables' own.
    if (rc != 0 && rc != -EINVAL && error && error_len > 0 && error[0] == 0) {
        snprintf(error, error_len, "could not run nftables in the namespace: %s", strerror(-rc));
    }
    return rc;
}
