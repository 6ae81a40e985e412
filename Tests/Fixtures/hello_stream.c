// hello-stream: a small static Fn function speaking http-stream, for fast tests and benchmarks.
//
// It follows what the real FDKs do (see the project's FDK contract notes): FN_FORMAT must be
// "http-stream"; FN_LISTENER is "unix:/dir/lsnr.sock"; it binds "/dir/phonylsnr.sock", makes it
// 0666, and symlinks "lsnr.sock" -> "phonylsnr.sock" (relative), then serves POST /call with
// HTTP/1.1 keep-alive, one request at a time.
//
// The request body selects the behaviour:
//   "!sleep MS"      sleep, then answer "slept MS"
//   "!status N"      answer with status N (200/502/504 on the wire, else 200 + Fn-Http-Status: N)
//   "!crash"         exit(3) without answering
//   "!alloc MB"      touch MB MiB of memory, then answer
//   "!big N"         answer N bytes of 'x'
//   "!drip N MS"     answer N chunks "drip I\n", one every MS ms (chunked: a streaming answer)
//   "!stderr TEXT"   write TEXT to stderr, answer "logged"
//   "!env NAME"      answer the value of the environment variable NAME
//   "!headers"       answer the request's header lines as they arrived
//   "!framing ..."   answer how the request body came: "framing chunked|length|none, N bytes"
//   "!file PATH"     answer the contents of PATH
//   "!trailers"      answer chunked, with a trailer field
//   "!close"         answer with a body ended by closing the connection
//   "!hdr N"         answer with a header X-Big of N bytes
//   "!fill PATH KB"  write KB KiB to PATH, answer "wrote N bytes: ok" or the error
//
// Request bodies may come with a Content-Length or chunked (as Fn's own agent sends them).
//   anything else    answer "Hello <body>" ("Hello World" for an empty body)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];
static size_t have;

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int respond(int c, int status, int gateway, const char *body, size_t len) {
    // On the wire only 200, 502 and 504 are statuses; in gateway mode the real one travels in
    // Fn-Http-Status, as the real FDKs do.
    int wire = (status == 200 || status == 502 || status == 504) ? status : 200;
    char gw[64] = "";
    if (gateway) snprintf(gw, sizeof gw, "Fn-Http-Status: %d\r\n", status);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nFn-Fdk-Version: fdk-c-test/1\r\n%sContent-Length: %zu\r\n\r\n",
                     wire, wire == 200 ? "OK" : "Error", gw, len);
    if (write_all(c, head, (size_t)n) < 0) return -1;
    return write_all(c, body, len);
}

// Finds a header (case-insensitive) in the header block; copies its value.
static int header(const char *headers, const char *name, char *out, size_t outlen) {
    size_t nl = strlen(name);
    for (const char *p = headers; p && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            size_t l = e ? (size_t)(e - v) : strlen(v);
            if (l >= outlen) l = outlen - 1;
            memcpy(out, v, l);
            out[l] = 0;
            return 1;
        }
        if (strncmp(p, "\r\n", 2) == 0) break;
    }
    return 0;
}

// Reads from `c` until `buf` holds at least `n` bytes. 0, or -1 on EOF or error.
static int fill(int c, size_t n) {
    while (have < n) {
        if (have == sizeof buf) return -1;
        ssize_t r = read(c, buf + have, sizeof buf - have);
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    return 0;
}

static void consume(size_t n) {
    memmove(buf, buf + n, have - n);
    have -= n;
}

// Offset of the first CRLF at or after `from` in `buf`, reading more as needed; -1 on EOF.
static long line_end(int c, size_t from) {
    for (;;) {
        char *e = have > from ? memmem(buf + from, have - from, "\r\n", 2) : NULL;
        if (e) return e - buf;
        if (have == sizeof buf) return -1;
        ssize_t r = read(c, buf + have, sizeof buf - have);
        if (r <= 0) return -1;
        have += (size_t)r;
    }
}

// A chunked request body after a head of `head_len` bytes: chunk sizes in hex (extensions after
// ';' ignored), then trailer lines up to an empty line. Returns the body length (kept up to
// `cap`), or -1 for a malformed body; consumes the whole request from `buf`.
static long read_chunked(int c, size_t head_len, char *out, size_t cap) {
    consume(head_len);
    size_t kept = 0;
    for (;;) {
        long e = line_end(c, 0);
        if (e < 0) return -1;
        char *endp;
        unsigned long size = strtoul(buf, &endp, 16);
        if (endp == buf || (*endp != ';' && *endp != '\r')) return -1;
        consume((size_t)e + 2);
        if (size == 0) break;
        if (size > sizeof buf - 2 || fill(c, size + 2) < 0) return -1;
        if (buf[size] != '\r' || buf[size + 1] != '\n') return -1;
        size_t take = size < cap - kept ? size : cap - kept;
        memcpy(out + kept, buf, take);
        kept += take;
        consume(size + 2);
    }
    for (;;) {  // trailers
        long e = line_end(c, 0);
        if (e < 0) return -1;
        consume((size_t)e + 2);
        if (e == 0) break;
    }
    return (long)kept;
}

static int serve(int c) {
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have == sizeof buf) return -1;
            ssize_t r = read(c, buf + have, sizeof buf - have);
            if (r <= 0) return r;
            have += (size_t)r;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        char headers[8192];
        size_t hl = head_len < sizeof headers ? head_len : sizeof headers - 1;
        memcpy(headers, buf, hl);
        headers[hl] = 0;
        char value[256];
        int gateway = header(headers, "Fn-Intent", value, sizeof value) && strcasecmp(value, "httprequest") == 0;
        static char body[65536];
        size_t bl;
        const char *framing;
        if (header(headers, "Transfer-Encoding", value, sizeof value) && strcasecmp(value, "chunked") == 0) {
            framing = "chunked";
            long n = read_chunked(c, head_len, body, sizeof body - 1);
            if (n < 0) return -1;
            bl = (size_t)n;
        } else {
            size_t body_len = header(headers, "Content-Length", value, sizeof value) ? strtoul(value, NULL, 10) : 0;
            framing = header(headers, "Content-Length", value, sizeof value) ? "length" : "none";
            if (head_len + body_len > sizeof buf) return -1;
            if (fill(c, head_len + body_len) < 0) return -1;
            bl = body_len < sizeof body - 1 ? body_len : sizeof body - 1;
            memcpy(body, buf + head_len, bl);
            consume(head_len + body_len);
        }
        body[bl] = 0;

        if (strncmp(headers, "POST /call ", 11) != 0) {
            const char *msg = "only POST /call";
            if (respond(c, 404, 0, msg, strlen(msg)) < 0) return -1;
            continue;
        }
        static char out[1 << 16];
        int status = 200;
        size_t out_len;
        if (strcmp(body, "!headers") == 0) {
            // The request's header lines as they arrived (the request line left out).
            const char *first = strstr(headers, "\r\n");
            out_len = (size_t)snprintf(out, sizeof out, "%s", first ? first + 2 : "");
        } else if (strncmp(body, "!framing", 8) == 0) {
            out_len = (size_t)snprintf(out, sizeof out, "framing %s, %zu bytes", framing, bl);
        } else if (strncmp(body, "!sleep ", 7) == 0) {
            long ms = atol(body + 7);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            out_len = (size_t)snprintf(out, sizeof out, "slept %ld", ms);
        } else if (strncmp(body, "!status ", 8) == 0) {
            status = atoi(body + 8);
            out_len = (size_t)snprintf(out, sizeof out, "status %d", status);
        } else if (strcmp(body, "!crash") == 0) {
            _exit(3);
        } else if (strncmp(body, "!alloc ", 7) == 0) {
            long mb = atol(body + 7);
            for (long i = 0; i < mb; i++) {
                char *p = malloc(1 << 20);
                if (p) memset(p, 1, 1 << 20);
            }
            out_len = (size_t)snprintf(out, sizeof out, "allocated %ld", mb);
        } else if (strncmp(body, "!big ", 5) == 0) {
            size_t n = strtoul(body + 5, NULL, 10);
            char hdr[256];
            int m = snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n", n);
            if (write_all(c, hdr, (size_t)m) < 0) return -1;
            memset(out, 'x', sizeof out);
            while (n > 0) {
                size_t k = n < sizeof out ? n : sizeof out;
                if (write_all(c, out, k) < 0) return -1;
                n -= k;
            }
            continue;
        } else if (strncmp(body, "!drip ", 6) == 0) {
            // Chunked, one chunk "drip I\n" every MS milliseconds: an answer that streams.
            long n = 0, ms = 0;
            sscanf(body + 6, "%ld %ld", &n, &ms);
            const char *hdr = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
            if (write_all(c, hdr, strlen(hdr)) < 0) return -1;
            for (long i = 0; i < n; i++) {
                if (i > 0) {
                    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
                    nanosleep(&ts, NULL);
                }
                char chunk[64];
                int len = snprintf(chunk + 8, sizeof chunk - 8, "drip %ld\n", i);
                int pre = snprintf(chunk, 8, "%x\r\n", len);
                memmove(chunk + pre, chunk + 8, (size_t)len);
                memcpy(chunk + pre + len, "\r\n", 2);
                if (write_all(c, chunk, (size_t)(pre + len + 2)) < 0) return -1;
            }
            if (write_all(c, "0\r\n\r\n", 5) < 0) return -1;
            continue;
        } else if (strncmp(body, "!stderr ", 8) == 0) {
            dprintf(2, "%s\n", body + 8);
            out_len = (size_t)snprintf(out, sizeof out, "logged");
        } else if (strncmp(body, "!env ", 5) == 0) {
            const char *v = getenv(body + 5);
            out_len = (size_t)snprintf(out, sizeof out, "%s", v ? v : "");
        } else if (strncmp(body, "!file ", 6) == 0) {
            // The contents of a file (/proc/self/limits, say), as far as they fit.
            int fd = open(body + 6, O_RDONLY | O_CLOEXEC);
            ssize_t n = fd < 0 ? -1 : read(fd, out, sizeof out - 1);
            if (fd >= 0) close(fd);
            out_len = n < 0 ? (size_t)snprintf(out, sizeof out, "cannot read %s: %s", body + 6, strerror(errno)) : (size_t)n;
        } else if (strcmp(body, "!trailers") == 0) {
            // A chunked answer with a trailer field: nothing of it may be left for the next call.
            const char *a = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                            "5\r\nchunk\r\n4\r\ned!\n\r\n0\r\nX-Sum: 9\r\n\r\n";
            if (write_all(c, a, strlen(a)) < 0) return -1;
            continue;
        } else if (strcmp(body, "!close") == 0) {
            // Neither Content-Length nor chunked: the body ends when the connection closes.
            const char *a = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nended by close";
            write_all(c, a, strlen(a));
            return -1;
        } else if (strncmp(body, "!hdr ", 5) == 0) {
            // A header X-Big of N bytes: a response head of about N + 100 bytes.
            size_t n = strtoul(body + 5, NULL, 10);
            if (n > sizeof out - 200) n = sizeof out - 200;
            int m = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nX-Big: ");
            memset(out + m, 'h', n);
            memcpy(out + m + n, "\r\n\r\nbig", 7);
            if (write_all(c, out, (size_t)m + n + 7) < 0) return -1;
            continue;
        } else if (strncmp(body, "!fill ", 6) == 0) {
            // Writes KB KiB to PATH: how much fitted, and why the rest did not.
            char target[200];
            long kb = 0;
            if (sscanf(body + 6, "%199s %ld", target, &kb) != 2) kb = -1;
            long written = 0;
            int err = 0;
            int fd = kb < 0 ? -1 : open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0) err = kb < 0 ? EINVAL : errno;
            static char block[1024];
            memset(block, 'f', sizeof block);
            while (fd >= 0 && written < kb * 1024) {
                ssize_t w = write(fd, block, sizeof block);
                if (w <= 0) {
                    err = w < 0 ? errno : ENOSPC;
                    break;
                }
                written += w;
            }
            if (fd >= 0) close(fd);
            out_len = (size_t)snprintf(out, sizeof out, "wrote %ld bytes: %s", written, err ? strerror(err) : "ok");
        } else {
            out_len = (size_t)snprintf(out, sizeof out, "Hello %s", bl ? body : "World");
        }
        if (respond(c, status, gateway, out, out_len) < 0) return -1;
    }
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const char *format = getenv("FN_FORMAT");
    const char *listener = getenv("FN_LISTENER");
    if (!format || strcmp(format, "http-stream") != 0) {
        fprintf(stderr, "incompatible function format!\n");
        return 1;
    }
    if (!listener || strncmp(listener, "unix:", 5) != 0) {
        fprintf(stderr, "FN_LISTENER is not set\n");
        return 1;
    }
    char path[108], dir[108], base[108], phony[220];
    snprintf(path, sizeof path, "%s", listener + 5);
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(base, sizeof base, "%s", path);
    snprintf(phony, sizeof phony, "%s/phony%s", dirname(dir), basename(base));
    unlink(path);
    unlink(phony);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(phony) >= sizeof sa.sun_path) {
        fprintf(stderr, "AF_UNIX path too long\n");
        return 1;
    }
    // As FDKs do: bind a "phony" name, listen, then link the final name to it, so the name
    // appears only once the socket listens. HELLO_BIND_DIRECT=1 binds the final name itself
    // (as some FDKs do), and HELLO_LISTEN_DELAY_MS listens only that much later: the runner
    // must wait for such a socket, not fail.
    const char *direct = getenv("HELLO_BIND_DIRECT");
    const char *delay = getenv("HELLO_LISTEN_DELAY_MS");
    int bind_direct = direct && strcmp(direct, "1") == 0;
    strcpy(sa.sun_path, bind_direct ? path : phony);
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("bind");
        return 1;
    }
    if (!delay && listen(s, 100) < 0) {
        perror("listen");
        return 1;
    }
    chmod(sa.sun_path, 0666);
    if (!bind_direct) {
        snprintf(base, sizeof base, "%s", path);
        char target[120];
        snprintf(target, sizeof target, "phony%s", basename(base));
        if (symlink(target, path) < 0) {
            perror("symlink");
            return 1;
        }
    }
    if (delay) {
        usleep((useconds_t)atoi(delay) * 1000);
        if (listen(s, 100) < 0) {
            perror("listen");
            return 1;
        }
    }
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR) continue;
            perror("accept");
            return 1;
        }
        have = 0;
        serve(c);
        close(c);
    }
}
