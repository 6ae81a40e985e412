#include "cc_curl.h"

#include <curl/curl.h>
#include <string.h>

void cc_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void *cc_handle_new(void) { return curl_easy_init(); }

void cc_handle_free(void *handle) {
    if (handle) curl_easy_cleanup((CURL *)handle);
}

const char *cc_strerror(int code) { return curl_easy_strerror((CURLcode)code); }

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
    CURL *h = handle ? (CURL *)handle : curl_easy_init();
    if (!h) return -1;
    curl_easy_reset(h);
    memset(resp, 0, sizeof *resp);
    struct curl_slist *headers = NULL;
    for (const char *const *p = req->headers; p && *p; p++) headers = curl_slist_append(headers, *p);

    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "fnrunner");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, resp->error);
    if (req->method && strcmp(req->method, "HEAD") == 0) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (req->range) curl_easy_setopt(h, CURLOPT_RANGE, req->range);
    if (req->ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
        curl_easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");  // keep the system CAs too
    }
    // Authorization headers are never sent to another host after a redirect (blob storage).
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (req->connect_timeout_ms > 0) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    if (req->low_speed_seconds > 0) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, req->low_speed_bytes);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, req->low_speed_seconds);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, req->on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, req->context);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, req->on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, req->context);

    CURLcode rc = curl_easy_perform(h);
    resp->curl_code = (int)rc;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    char *ct = NULL;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) strncpy(resp->content_type, ct, sizeof resp->content_type - 1);
    char *eff = NULL;
    if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) strncpy(resp->effective_url, eff, sizeof resp->effective_url - 1);
    if (rc != CURLE_OK && resp->error[0] == '\0') strncpy(resp->error, curl_easy_strerror(rc), sizeof resp->error - 1);

    curl_slist_free_all(headers);
    if (!handle) curl_easy_cleanup(h);
    return 0;
}
