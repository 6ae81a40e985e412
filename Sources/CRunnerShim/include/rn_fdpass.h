#pragma once
#include <stddef.h>

/// Sends one message on a SOCK_SEQPACKET socket, with `fd` as its only SCM_RIGHTS descriptor
/// (none when fd < 0), never waiting for room (a peer that reads nothing gets -EAGAIN). Bytes
/// sent, or -errno.
long rn_send_with_fd(int sock, const void *bytes, size_t length, int fd);

/// Receives one message of at most `capacity` bytes, waiting at most `timeout_ms` (-1: no
/// limit). The first descriptor that came with it is stored in `*fd` (close-on-exec), or -1;
/// any further ones are closed at once, so a peer cannot make the receiver hold descriptors
/// it never asked for (closed as `rn_close_untrusted` closes). A message longer than `capacity` is refused (-EMSGSIZE) after its
/// descriptors are closed. Bytes received (0: the peer closed), -ETIMEDOUT, or -errno.
long rn_recv_with_fd(int sock, void *bytes, size_t capacity, int *fd, int timeout_ms);

/// Closes a descriptor a peer sent: a socket first gets SO_LINGER {1, 0}, so that a peer that
/// left data unsent and a long linger time cannot make this close wait (other kinds of
/// descriptor ignore the option).
void rn_close_untrusted(int fd);
