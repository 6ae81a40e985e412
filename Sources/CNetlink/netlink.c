// Route netlink requests for the function network: links, addresses, routes (see rn_netlink.h).
#define _GNU_SOURCE
#include "rn_netlink.h"
#include "netns_run.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RN_NL_BUFFER 4096

typedef struct {
    struct nlmsghdr *h;
    size_t cap;
    int overflow;
} rn_msg;

static struct rtattr *attr(rn_msg *m, int type, const void *data, size_t len) {
    size_t at = NLMSG_ALIGN(m->h->nlmsg_len);
    if (at + RTA_ALIGN(RTA_LENGTH(len)) > m->cap) {
        m->overflow = 1;
        return NULL;
    }
    struct rtattr *a = (struct rtattr *)((char *)m->h + at);
    a->rta_type = (unsigned short)type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len) memcpy(RTA_DATA(a), data, len);
    m->h->nlmsg_len = (uint32_t)(at + RTA_ALIGN(a->rta_len));
    return a;
}

static int attr_string(rn_msg *m, int type, const char *s) { return attr(m, type, s, strlen(s) + 1) ? 0 : -1; }
static int attr_u32(rn_msg *m, int type, uint32_t v) { return attr(m, type, &v, sizeof v) ? 0 : -1; }

static void nest_end(rn_msg *m, struct rtattr *nest) {
    if (nest) nest->rta_len = (unsigned short)((char *)m->h + m->h->nlmsg_len - (char *)nest);
}

static void start(rn_msg *m, void *buffer, size_t cap, int type, int flags, const void *header, size_t header_len) {
    memset(buffer, 0, cap);
    m->h = buffer;
    m->cap = cap;
    m->overflow = 0;
    m->h->nlmsg_len = (uint32_t)NLMSG_LENGTH(header_len);
    m->h->nlmsg_type = (unsigned short)type;
    m->h->nlmsg_flags = (unsigned short)(NLM_F_REQUEST | flags);
    memcpy(NLMSG_DATA(m->h), header, header_len);
}

static _Atomic uint32_t sequence = 1;

static int send_message(int nl, rn_msg *m) {
    if (m->overflow) return -ENOBUFS;
    m->h->nlmsg_seq = atomic_fetch_add(&sequence, 1);
    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    for (;;) {
        if (sendto(nl, m->h, m->h->nlmsg_len, 0, (struct sockaddr *)&to, sizeof to) >= 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

static ssize_t receive(int nl, void *buffer, size_t cap) {
    for (;;) {
        ssize_t n = recv(nl, buffer, cap, 0);
        if (n >= 0) return n;
        if (errno != EINTR) return -errno;
    }
}

/// Sends a request and hands each reply of its sequence to `visit` until `visit` returns
/// something other than 1 (0 or -errno: the result), an error arrives, or a dump is done.
static int each_reply(int nl, rn_msg *m, char *reply, size_t cap, int (*visit)(struct nlmsghdr *, void *), void *context,
                      int done_result) {
    int rc = send_message(nl, m);
    if (rc < 0) return rc;
    uint32_t seq = m->h->nlmsg_seq;
    for (;;) {
        ssize_t n = receive(nl, reply, cap);
        if (n < 0) return (int)n;
        size_t left = (size_t)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)reply; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != seq) continue;
            if (h->nlmsg_type == NLMSG_DONE) return done_result;
            if (h->nlmsg_type == NLMSG_ERROR) {
                int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
                return e ? e : done_result;
            }
            int r = visit(h, context);
            if (r != 1) return r;
        }
    }
}

static int ignore_reply(struct nlmsghdr *h, void *context) {
    (void)h;
    (void)context;
    return 1;
}

/// Sends a request that changes something and waits for its acknowledgement.
static int transact(int nl, rn_msg *m) {
    m->h->nlmsg_flags |= NLM_F_ACK;
    _Alignas(struct nlmsghdr) char reply[RN_NL_BUFFER];
    return each_reply(nl, m, reply, sizeof reply, ignore_reply, NULL, 0);
}

static int open_socket(void *unused) {
    (void)unused;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    return fd < 0 ? -errno : fd;
}

int rn_nl_open(int nsfd) { return rn_netns_run(nsfd, open_socket, NULL); }

typedef struct {
    const char *path;
    const char *value;
} rn_sysctl_job;

static int write_sysctl(void *p) {
    rn_sysctl_job *job = p;
    int fd = open(job->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = strlen(job->value);
    ssize_t n = write(fd, job->value, len);
    int rc = n < 0 ? -errno : ((size_t)n == len ? 0 : -EIO);
    close(fd);
    return rc;
}

int rn_netns_sysctl(int nsfd, const char *path, const char *value) {
    rn_sysctl_job job = {path, value};
    return rn_netns_run(nsfd, write_sysctl, &job);
}

typedef struct {
    const char *path;
    char *buffer;
    size_t len;
} rn_sysctl_read_job;

static int read_sysctl(void *p) {
    rn_sysctl_read_job *job = p;
    int fd = open(job->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, job->buffer, job->len - 1);
    int rc = n < 0 ? -errno : 0;
    job->buffer[n < 0 ? 0 : n] = 0;
    close(fd);
    return rc;
}

int rn_netns_sysctl_read(int nsfd, const char *path, char *buffer, size_t len) {
    if (len == 0) return -EINVAL;
    rn_sysctl_read_job job = {path, buffer, len};
    return rn_netns_run(nsfd, read_sysctl, &job);
}

typedef struct {
    int *found_index;
    rn_link_info *out;
} rn_link_visit;

/// Copies the byte counters of a struct rtnl_link_stats64 attribute into `out`; false if it is
/// too short. Kernels send their own struct's size (192 bytes before 5.19, more since): only
/// the fields read here must be there.
static bool read_byte_counters(const struct rtattr *a, rn_link_info *out) {
    if (RTA_PAYLOAD(a) < offsetof(struct rtnl_link_stats64, tx_bytes) + sizeof(uint64_t)) return false;
    struct rtnl_link_stats64 stats;
    memset(&stats, 0, sizeof stats);
    size_t n = RTA_PAYLOAD(a) < sizeof stats ? RTA_PAYLOAD(a) : sizeof stats;
    memcpy(&stats, RTA_DATA(a), n);
    out->rx_bytes = stats.rx_bytes;
    out->tx_bytes = stats.tx_bytes;
    return true;
}

static int visit_link(struct nlmsghdr *h, void *context) {
    rn_link_visit *v = context;
    if (h->nlmsg_type != RTM_NEWLINK) return 1;
    struct ifinfomsg *info = NLMSG_DATA(h);
    if (v->found_index) *v->found_index = info->ifi_index;
    rn_link_info *out = v->out;
    if (!out) return 0;
    memset(out, 0, sizeof *out);
    out->up = (info->ifi_flags & IFF_UP) != 0;
    int alen = (int)IFLA_PAYLOAD(h);  // signed: RTA_NEXT on a short tail must not wrap
    for (struct rtattr *a = IFLA_RTA(info); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type == IFLA_MTU) memcpy(&out->mtu, RTA_DATA(a), sizeof out->mtu);
        if (a->rta_type == IFLA_MASTER) memcpy(&out->master, RTA_DATA(a), sizeof out->master);
        if (a->rta_type == IFLA_STATS64) read_byte_counters(a, out);
        if (a->rta_type == IFLA_IFNAME) {
            size_t n = RTA_PAYLOAD(a) < sizeof out->name - 1 ? RTA_PAYLOAD(a) : sizeof out->name - 1;
            memcpy(out->name, RTA_DATA(a), n);
            out->name[n] = 0;
        }
    }
    return 0;
}

/// A GETLINK by index or name; fills `out` from the reply (or returns -errno).
static int get_link(int nl, int index, const char *name, int *found_index, rn_link_info *out) {
    if (name && strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    _Alignas(struct nlmsghdr) char buffer[512];
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_GETLINK, 0, &ifi, sizeof ifi);
    if (name) attr_string(&m, IFLA_IFNAME, name);
    _Alignas(struct nlmsghdr) char reply[RN_NL_BUFFER * 4];
    rn_link_visit v = {found_index, out};
    return each_reply(nl, &m, reply, sizeof reply, visit_link, &v, -EPROTO);
}

int rn_nl_link_index(int nl, const char *name) {
    int index = 0;
    int rc = get_link(nl, 0, name, &index, NULL);
    return rc < 0 ? rc : index;
}

int rn_nl_link_info(int nl, int index, rn_link_info *out) { return get_link(nl, index, NULL, NULL, out); }


static int visit_stats(struct nlmsghdr *h, void *context) {
    if (h->nlmsg_type != RTM_NEWSTATS) return 1;
    rn_link_info *out = context;
    size_t header = NLMSG_ALIGN(sizeof(struct if_stats_msg));
    if (h->nlmsg_len < NLMSG_LENGTH(header)) return -EPROTO;
    int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(header));  // signed, as above
    for (struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(h) + header); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type == IFLA_STATS_LINK_64 && read_byte_counters(a, out)) return 0;
    }
    return -EPROTO;
}

/// RTM_GETSTATS for the 64-bit link counters alone: the kernel copies one struct instead of
/// filling a whole RTM_NEWLINK message (bridge port, IPv6 and queue attributes), which a call's
/// stats would otherwise pay for on every call.
int rn_nl_link_bytes(int nl, int index, rn_link_info *out) {
    _Alignas(struct nlmsghdr) char buffer[128];
    struct if_stats_msg ism = {.family = AF_UNSPEC, .ifindex = (uint32_t)index, .filter_mask = IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64)};
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_GETSTATS, 0, &ism, sizeof ism);
    _Alignas(struct nlmsghdr) char reply[RN_NL_BUFFER];
    memset(out, 0, sizeof *out);
    return each_reply(nl, &m, reply, sizeof reply, visit_stats, out, -EPROTO);
}

int rn_nl_bridge_create(int nl, const char *name, const uint8_t mac[6]) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    _Alignas(struct nlmsghdr) char buffer[512];
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    attr_string(&m, IFLA_IFNAME, name);
    // An address given at creation is kept; without one the bridge takes its lowest port's,
    // and changes it as ports come and go.
    attr(&m, IFLA_ADDRESS, mac, 6);
    struct rtattr *info = attr(&m, IFLA_LINKINFO, NULL, 0);
    attr_string(&m, IFLA_INFO_KIND, "bridge");
    nest_end(&m, info);
    return transact(nl, &m);
}

int rn_nl_link_set(int nl, int index, int up, unsigned mtu) {
    _Alignas(struct nlmsghdr) char buffer[256];
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = up ? IFF_UP : 0, .ifi_change = IFF_UP};
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    if (mtu > 0) attr_u32(&m, IFLA_MTU, mtu);
    return transact(nl, &m);
}

int rn_nl_addr_add(int nl, int index, uint32_t addr, int prefix) {
    if (prefix < 0 || prefix > 32) return -EINVAL;
    _Alignas(struct nlmsghdr) char buffer[256];
    struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix, .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = (unsigned)index};
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
    attr(&m, IFA_LOCAL, &addr, sizeof addr);
    attr(&m, IFA_ADDRESS, &addr, sizeof addr);
    if (prefix < 31) {
        uint32_t host_mask = prefix == 0 ? 0xffffffffu : ((1u << (32 - prefix)) - 1);
        uint32_t broadcast = addr | __builtin_bswap32(host_mask);
        attr(&m, IFA_BROADCAST, &broadcast, sizeof broadcast);
    }
    return transact(nl, &m);
}

int rn_nl_veth_create(int nl, const char *host_name, const char *peer_name, int peer_nsfd, int master, unsigned mtu) {
    if (strlen(host_name) >= IFNAMSIZ || strlen(peer_name) >= IFNAMSIZ) return -ENAMETOOLONG;
    _Alignas(struct nlmsghdr) char buffer[1024];
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    attr_string(&m, IFLA_IFNAME, host_name);
    if (mtu > 0) attr_u32(&m, IFLA_MTU, mtu);
    if (master > 0) attr_u32(&m, IFLA_MASTER, (uint32_t)master);
    struct rtattr *info = attr(&m, IFLA_LINKINFO, NULL, 0);
    attr_string(&m, IFLA_INFO_KIND, "veth");
    struct rtattr *data = attr(&m, IFLA_INFO_DATA, NULL, 0);
    struct ifinfomsg peer_ifi = {.ifi_family = AF_UNSPEC};
    struct rtattr *peer = attr(&m, VETH_INFO_PEER, &peer_ifi, sizeof peer_ifi);
    attr_string(&m, IFLA_IFNAME, peer_name);
    if (mtu > 0) attr_u32(&m, IFLA_MTU, mtu);
    if (peer_nsfd >= 0) attr_u32(&m, IFLA_NET_NS_FD, (uint32_t)peer_nsfd);
    nest_end(&m, peer);
    nest_end(&m, data);
    nest_end(&m, info);
    return transact(nl, &m);
}

int rn_nl_port_isolate(int nl, int index) {
    _Alignas(struct nlmsghdr) char buffer[256];
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    struct rtattr *info = attr(&m, IFLA_LINKINFO, NULL, 0);
    attr_string(&m, IFLA_INFO_SLAVE_KIND, "bridge");
    struct rtattr *data = attr(&m, IFLA_INFO_SLAVE_DATA, NULL, 0);
    uint8_t on = 1;
    attr(&m, IFLA_BRPORT_ISOLATED, &on, sizeof on);
    nest_end(&m, data);
    nest_end(&m, info);
    return transact(nl, &m);
}

int rn_nl_route_default(int nl, int index, uint32_t gateway) {
    _Alignas(struct nlmsghdr) char buffer[256];
    struct rtmsg rt = {
        .rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
        .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST,
    };
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
    attr(&m, RTA_GATEWAY, &gateway, sizeof gateway);
    attr_u32(&m, RTA_OIF, (uint32_t)index);
    return transact(nl, &m);
}

int rn_nl_link_delete(int nl, int index, const char *name) {
    if (name && strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    _Alignas(struct nlmsghdr) char buffer[128];
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = name ? 0 : index};
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_DELLINK, 0, &ifi, sizeof ifi);
    if (name) attr_string(&m, IFLA_IFNAME, name);
    return transact(nl, &m);
}

typedef struct {
    rn_route *out;
    int max;
    int count;
} rn_route_visit;

static int visit_route(struct nlmsghdr *h, void *context) {
    rn_route_visit *v = context;
    if (h->nlmsg_type != RTM_NEWROUTE) return 1;
    struct rtmsg *r = NLMSG_DATA(h);
    uint32_t table = r->rtm_table;
    rn_route route = {.prefix = r->rtm_dst_len};
    int alen = (int)RTM_PAYLOAD(h);  // signed, as in visit_link
    for (struct rtattr *a = RTM_RTA(r); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type == RTA_TABLE) memcpy(&table, RTA_DATA(a), sizeof table);
        if (a->rta_type == RTA_DST) memcpy(&route.dst, RTA_DATA(a), sizeof route.dst);
        if (a->rta_type == RTA_OIF) memcpy(&route.oif, RTA_DATA(a), sizeof route.oif);
        if (a->rta_type == RTA_GATEWAY) memcpy(&route.gateway, RTA_DATA(a), sizeof route.gateway);
    }
    if (table != RT_TABLE_MAIN || r->rtm_type != RTN_UNICAST) return 1;
    if (v->count < v->max) v->out[v->count] = route;
    v->count++;
    return 1;
}

int rn_nl_routes(int nl, rn_route *out, int max) {
    _Alignas(struct nlmsghdr) char buffer[128];
    struct rtmsg rt = {.rtm_family = AF_INET};
    rn_msg m;
    start(&m, buffer, sizeof buffer, RTM_GETROUTE, NLM_F_DUMP, &rt, sizeof rt);
    _Alignas(struct nlmsghdr) char reply[RN_NL_BUFFER * 8];
    rn_route_visit v = {out, max, 0};
    int rc = each_reply(nl, &m, reply, sizeof reply, visit_route, &v, 0);
    return rc < 0 ? rc : v.count;
}
