// Route netlink, network-namespace entry and nftables for the function network (NodeNetwork).
// Every function returns 0 (or a positive value) on success and -errno on failure; none runs
// between clone and exec, so they use libc freely.
#ifndef RN_NETLINK_H
#define RN_NETLINK_H

#include <stddef.h>
#include <stdint.h>

/// Opens a NETLINK_ROUTE socket in the network namespace `nsfd` (-1: the caller's own). A
/// netlink socket stays in the namespace it was made in, so only the opening needs a thread
/// that has entered the namespace; that thread ends right after.
int rn_nl_open(int nsfd);

/// The index of link `name`, or -ENODEV.
int rn_nl_link_index(int nl, const char *name);

/// Makes a bridge named `name` (down) with hardware address `mac`, which it keeps whatever
/// ports join or leave. -EEXIST when a link of that name exists.
int rn_nl_bridge_create(int nl, const char *name, const uint8_t mac[6]);

/// Sets a link up or down and, when `mtu` > 0, its MTU.
int rn_nl_link_set(int nl, int index, int up, unsigned mtu);

/// Adds an IPv4 address (network byte order) with its prefix length; -EEXIST when present.
int rn_nl_addr_add(int nl, int index, uint32_t addr, int prefix);

/// Makes a veth pair: `host_name` stays here, enslaved to `master` (0: none) and up; its peer
/// is created directly inside the namespace `peer_nsfd` as `peer_name`. Both get `mtu`.
int rn_nl_veth_create(int nl, const char *host_name, const char *peer_name, int peer_nsfd, int master, unsigned mtu);

/// Marks a bridge port isolated: it reaches only the bridge itself, never another isolated port.
int rn_nl_port_isolate(int nl, int index);

/// Adds a default IPv4 route through `gateway` (network byte order) on link `index`.
int rn_nl_route_default(int nl, int index, uint32_t gateway);

/// Deletes a link by name when `name` is given, else by index (for a veth, both ends go at
/// once). By name is what survives a namespace's death: an index may be reused meanwhile.
int rn_nl_link_delete(int nl, int index, const char *name);

typedef struct {
    char name[16];
    unsigned mtu;
    int master;
    int up;
    uint64_t rx_bytes;
    uint64_t tx_bytes;
} rn_link_info;

/// Reads a link's MTU, master, state and byte counters.
int rn_nl_link_info(int nl, int index, rn_link_info *out);
/// Reads only a link's byte counters (rx_bytes, tx_bytes of `out`), by index.
int rn_nl_link_bytes(int nl, int index, rn_link_info *out);

typedef struct {
    uint32_t dst;      // network byte order
    int prefix;
    int oif;
    uint32_t gateway;  // 0 when none
} rn_route;

/// The IPv4 routes of the main table, at most `max`; returns how many (or -errno).
int rn_nl_routes(int nl, rn_route *out, int max);

/// Writes `value` to a /proc/sys file as seen from the namespace `nsfd` (-1: the caller's).
int rn_netns_sysctl(int nsfd, const char *path, const char *value);

/// Reads a /proc/sys file as seen from the namespace `nsfd` into `buffer` (NUL-terminated).
int rn_netns_sysctl_read(int nsfd, const char *path, char *buffer, size_t len);

/// Runs nftables commands (nft's syntax) in the namespace `nsfd` (-1: the caller's) through
/// libnftables, loaded on first use. On failure `error` holds nft's message; -ENOSYS when
/// libnftables is not installed.
int rn_nft_run(int nsfd, const char *commands, char *error, size_t error_len);

#endif
