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

void wsock_frames_release(wsock_frames *f);

/* One message on its way to many connections (a room's broadcast): its
 * frames are made at most once per variant (fragment size, and
 * compressed form: see wsock_compress.h) and queued by reference, not
 * copied, to every receiver of that variant. */
#define WSOCK_SHARED_FORMS 4
typedef struct {
    int is_text;
    const void *data;
    apr_size_t len;
    wsock_frames *forms[WSOCK_SHARED_FORMS];
    int n;
} wsock_shared;

void wsock_shared_init(wsock_shared *s, int is_text, const void *data, apr_size_t len);
/* The caller's references; receivers hold their own. */
void wsock_shared_release(wsock_shared *s);

/* wsock_output_send() of a shared message to wc. */
apr_status_t wsock_output_send_shared(wsock_conn *wc, wsock_shared *s);

/* Registers the clean-up of the connection's queue with its pool. */
void wsock_output_queue_init(wsock_conn *wc);

/* Owner thread, on an idle connection: frees the queue's arrays if empty. */
void wsock_output_trim(wsock_conn *wc);

/* Owner thread: a control frame (payload <= 125 bytes). */
apr_status_t wsock_output_control(wsock_conn *wc, wsock_opcode op, const uint8_t *payload,
                                  apr_size_t len);

/* Owner thread: refuse further queued messages; with copy_to_obuf, what is
 * queued now goes out ahead of whatever is written next, else it is dropped. */
void wsock_output_close_queue(wsock_conn *wc, int copy_to_obuf);

/* Owner thread: bytes produced that the socket has not taken yet (the
 * output buffer and the network filter's backlog); compare with
 * WSOCK_OUT_HIGH. */
apr_size_t wsock_output_backlog(const wsock_conn *wc);

/* Owner thread, after writing: runs a wsock_on_writable() callback whose
 * moment has come (room again, or the connection closing). */
void wsock_output_writable_check(wsock_conn *wc);

#endif /* WSOCK_OUTPUT_H */
