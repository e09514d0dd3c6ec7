/*
 * wsock_log.h — message tags for the error log.  Every log line of the
 * module starts with a unique tag, WSOCKnnnn, the way httpd's own modules
 * use AHnnnnn, so that admins can grep for it and docs can explain it.
 * Numbers: 00xx config and startup, 01xx connection I/O, 02xx protocol,
 * 03xx handshake, 05xx bus, 06xx slow consumers and rooms, 07xx security,
 * 08xx Redis, 13xx compression, 14xx operations, 15xx publish and backends.
 */
#ifndef WSOCK_LOG_H
#define WSOCK_LOG_H

#define WSOCKNO(n) "WSOCK" #n ": "

#endif /* WSOCK_LOG_H */
