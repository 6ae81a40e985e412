#define _GNU_SOURCE
#include "cc_curl.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

// libcurl is dlopen'ed on first use rather than linked: it and its ~30 dependencies cost several
// milliseconds of start-up, which commands that never talk to a registry should not pay.
static struct {
    int loaded;
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    api.global_init = (CURLcode (*)(long))dlsym(h, "curl_global_init");
    api.easy_init = (CURL * (*)(void)) dlsym(h, "curl_easy_init");
    api.easy_cleanup = (void (*)(CURL *))dlsym(h, "curl_easy_cleanup");
    api.easy_reset = (void (*)(CURL *))dlsym(h, "curl_easy_reset");
    api.easy_setopt = (CURLcode (*)(CURL *, CURLoption, ...))dlsym(h, "curl_easy_setopt");
    api.easy_perform = (CURLcode (*)(CURL *))dlsym(h, "curl_easy_perform");
    api.easy_getinfo = (CURLcode (*)(CURL *, CURLINFO, ...))dlsym(h, "curl_easy_getinfo");
    api.easy_strerror = (const char *(*)(CURLcode))dlsym(h, "curl_easy_strerror");
    api.slist_append = (struct curl_slist * (*)(struct curl_slist *, const char *)) dlsym(h, "curl_slist_append");
    api.slist_free_all = (void (*)(struct curl_slist *))dlsym(h, "curl_slist_free_all");
    api.loaded = api.global_init && api.easy_init && api.easy_cleanup && api.easy_reset && api.easy_setopt &&
                 api.easy_perform && api.easy_getinfo && api.easy_strerror && api.slist_append && api.slist_free_all;
    if (api.loaded) api.global_init(CURL_GLOBAL_DEFAULT);
}

int cc_available(void) {
    pthread_once(&load_once, load);
    return api.loaded;
}

void cc_global_init(void) { (void)cc_available(); }

void *cc_handle_new(void) { return cc_available() ? api.easy_init() : NULL; }

void cc_handle_free(void *handle) {
    if (handle && api.loaded) api.easy_cleanup((CURL *)handle);
}

const char *cc_strerror(int code) { return cc_available() ? api.easy_strerror((CURLcode)code) : "libcurl is not installed"; }

int cc_is_transient(int code) {
    switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

int cc_is_tls_failure(int code) {
    return code == CURLE_SSL_CONNECT_ERROR || code == CURLE_PEER_FAILED_VERIFICATION ||
           code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_CACERT_BADFILE;
}

int cc_perform(void *handle, const cc_request *req, cc_response *resp) {
    memset(resp, 0, sizeof *resp);
    if (!cc_available()) {
        resp->curl_code = CURLE_FAILED_INIT;
        strncpy(resp->error, "libcurl.so.4 could not be loaded (install libcurl4)", sizeof resp->error - 1);
        return -1;
    }
    CURL *h = handle ? (CURL *)handle : api.easy_init();
    if (!h) return -1;
    api.easy_reset(h);
    struct curl_slist *headers = NULL;
    for (const char *const *p = req->headers; p && *p; p++) headers = api.slist_append(headers, *p);

    api.easy_setopt(h, CURLOPT_URL, req->url);
    api.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    api.easy_setopt(h, CURLOPT_USERAGENT, "fnrunner");
    api.easy_setopt(h, CURLOPT_ERRORBUFFER, resp->error);
    if (req->method && strcmp(req->method, "HEAD") == 0) api.easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (req->range) api.easy_setopt(h, CURLOPT_RANGE, req->range);
    if (req->ca_file) {
        api.easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
        api.easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");  // keep the system CAs too
    }
    // Authorization headers are never sent to another host after a redirect (blob storage).
    api.easy_setopt(h, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    api.easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    api.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    api.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (req->connect_timeout_ms > 0) api.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    if (req->low_speed_seconds > 0) {
        api.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, req->low_speed_bytes);
        api.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, req->low_speed_seconds);
    }
    api.easy_setopt(h, CURLOPT_WRITEFUNCTION, req->on_body);
    api.easy_setopt(h, CURLOPT_WRITEDATA, req->context);
    api.easy_setopt(h, CURLOPT_HEADERFUNCTION, req->on_header);
    api.easy_setopt(h, CURLOPT_HEADERDATA, req->context);

    CURLcode rc = api.easy_perform(h);
    resp->curl_code = (int)rc;
    api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    char *ct = NULL;
    if (api.easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) strncpy(resp->content_type, ct, sizeof resp->content_type - 1);
    char *eff = NULL;
    if (api.easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) strncpy(resp->effective_url, eff, sizeof resp->effective_url - 1);
    if (rc != CURLE_OK && resp->error[0] == '\0') strncpy(resp->error, api.easy_strerror(rc), sizeof resp->error - 1);

    api.slist_free_all(headers);
    if (!handle) api.easy_cleanup(h);
    return 0;
}
