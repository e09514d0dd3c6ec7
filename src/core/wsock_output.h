/*
 * wsock_output.h — the sending side of a connection (see wsock_output.c).
 */
#ifndef WSOCK_OUTPUT_H
#define WSOCK_OUTPUT_H

#include "wsock_conn.h"

/* Buffers keep up to this much memory between uses; anything bigger (a
 * large message went through) is given back once the buffer is empty, so
 * an idle connection does not hold its high-water mark. */
#define WSOCK_BUF_KEEP (64 * 1024)

void wsock_buf_init(wsock_buf *b, apr_pool_t *pool);
int wsock_buf_reserve(wsock_buf *b, apr_size_t extra);
void wsock_buf_trim(wsock_buf *b);
/* Gives all of an empty buffer's memory back (an idle connection of the
 * asynchronous driver keeps none). */
void wsock_buf_release(wsock_buf *b);

/* Owner thread: a data message, fragmented per WSockFragmentSize. */
apr_status_t wsock_output_message(wsock_conn *wc, wsock_opcode op, const void *data,
                                  apr_size_t len);

/* wsock_send() without the UTF-8 check, for callers that checked once for
 * many receivers (wsock_publish). */
apr_status_t wsock_output_send(wsock_conn *wc, int is_text, const void *data, apr_size_t len);

/* Owner thread: a control frame (payload <= 125 bytes). */
apr_status_t wsock_output_control(wsock_conn *wc, wsock_opcode op, const uint8_t *payload,
                                  apr_size_t len);

/* Owner thread: refuse further queued messages; with copy_to_obuf, what is
 * queued now goes out ahead of whatever is written next, else it is dropped. */
void wsock_output_close_queue(wsock_conn *wc, int copy_to_obuf);

#endif /* WSOCK_OUTPUT_H */
