/*
 * wsock_peer_acked.c — TCP_INFO's bytes_acked; see wsock_peer_acked.h.
 *
 * A file of its own: the kernel's <linux/tcp.h> has the field, glibc's
 * <netinet/tcp.h> (which httpd's mpm_common.h includes) does not, and
 * the two cannot be included together.
 */
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#ifdef __linux__
#include <linux/tcp.h>
#endif

#include <apr_portable.h>

#include "wsock_peer_acked.h"

apr_uint64_t wsock_peer_acked(apr_socket_t *sock)
{
#if defined(__linux__) && defined(TCP_INFO)
    apr_os_sock_t fd = -1;
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    if (sock == NULL || apr_os_sock_get(&fd, sock) != APR_SUCCESS || fd < 0) {
        return 0;
    }
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0
        || len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked)) {
        return 0;                   /* not TCP, or a kernel before 4.1 */
    }
    return ti.tcpi_bytes_acked;
#else
    (void)sock;
    return 0;
#endif
}
