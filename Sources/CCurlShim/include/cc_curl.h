// Non-variadic wrappers around libcurl's easy interface: curl_easy_setopt and
// curl_easy_getinfo are variadic C functions, which Swift cannot call.
#ifndef CC_CURL_H
#define CC_CURL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef size_t (*cc_data_callback)(char *data, size_t size, size_t count, void *context);

/// One transfer's settings. Strings are copied by curl where it documents so.
typedef struct {
    const char *url;
    const char *method;              // "GET", "HEAD"
    const char *const *headers;      // "Name: value", NULL-terminated
    const char *range;               // "123-" or NULL
    const char *ca_file;             // extra CA bundle for this registry, or NULL
    int follow_redirects;
    long connect_timeout_ms;
    long low_speed_bytes;            // abort when slower than this for low_speed_seconds
    long low_speed_seconds;
    cc_data_callback on_body;
    cc_data_callback on_header;
    void *context;
} cc_request;

typedef struct {
    long status;                     // HTTP status, 0 if none
    int curl_code;                   // CURLcode
    char error[256];                 // curl's error text
    char content_type[256];
    char effective_url[1024];
} cc_response;

/// Performs one transfer on a reusable handle (NULL: a new handle is made and freed).
int cc_perform(void *handle, const cc_request *request, cc_response *response);

void *cc_handle_new(void);
void cc_handle_free(void *handle);
void cc_global_init(void);

/// Loads libcurl on first use; 0 if it is not installed.
int cc_available(void);

/// curl_easy_strerror.
const char *cc_strerror(int code);

/// Whether a curl error is transient (connection, timeout, partial transfer) and worth a retry.
int cc_is_transient(int code);
/// Whether a curl error is a TLS failure (used to fall back to plain HTTP for insecure registries).
int cc_is_tls_failure(int code);

#ifdef __cplusplus
}
#endif
#endif
