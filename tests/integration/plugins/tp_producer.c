/*
 * tp_producer.c — test plugin for flow control (wsock_send_try,
 * wsock_on_writable, wsock_ref).  A text message "produce N SIZE" starts a
 * thread of the plugin's own that sends N binary messages of SIZE bytes,
 * each starting with its number (4 bytes, big-endian), as fast as the
 * client reads them: it sends while wsock_send_try() takes them, and waits
 * for wsock_on_writable() when it says APR_EAGAIN.  Then it sends the text
 * "done N EAGAINS".  The thread keeps the connection with a reference, so
 * it may outlive the connection (a client that leaves halfway): it stops
 * at the first APR_EOF.  "produce-send N SIZE" does the same with plain
 * wsock_send(), for comparison (a small WSockSendQueue then closes the
 * client as a slow consumer).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <httpd.h>

#include "wsock.h"

typedef struct {
    wsock_conn *wc;
    long n, size;
    int plain;                      /* wsock_send() instead of _try */
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int writable;                   /* under mutex */
} producer;

/* On the connection's owning thread: room again. */
static void on_writable(wsock_conn *wc, void *baton)
{
    producer *p = baton;

    (void)wc;
    pthread_mutex_lock(&p->mutex);
    p->writable = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mutex);
}

/* Waits (bounded: 10 s) for on_writable; 0 when it did not come. */
static int wait_writable(producer *p)
{
    struct timespec deadline;
    int got, rc = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&p->mutex);
    while (!p->writable && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&p->cond, &p->mutex, &deadline);
    }
    got = p->writable;
    p->writable = 0;
    pthread_mutex_unlock(&p->mutex);
    return got;
}

static void *produce(void *data)
{
    producer *p = data;
    unsigned char *msg = calloc(1, (size_t)p->size);
    long eagains = 0, i;
    char done[96];
    apr_status_t rv = APR_SUCCESS;

    for (i = 0; msg && i < p->n; i++) {
        msg[0] = (unsigned char)(i >> 24);
        msg[1] = (unsigned char)(i >> 16);
        msg[2] = (unsigned char)(i >> 8);
        msg[3] = (unsigned char)i;
        if (p->plain) {
            rv = wsock_send(p->wc, 0, msg, (apr_size_t)p->size);
            if (rv != APR_SUCCESS) {
                break;
            }
            continue;
        }
        while ((rv = wsock_send_try(p->wc, 0, msg, (apr_size_t)p->size)) == APR_EAGAIN) {
            eagains++;
            if (wsock_on_writable(p->wc, on_writable, p) != APR_SUCCESS || !wait_writable(p)) {
                rv = APR_EOF;
                break;
            }
        }
        if (rv != APR_SUCCESS) {
            break;
        }
    }
    if (rv == APR_SUCCESS) {
        snprintf(done, sizeof(done), "done %ld %ld", i, eagains);
        while (wsock_send_try(p->wc, 1, done, strlen(done)) == APR_EAGAIN
               && wsock_on_writable(p->wc, on_writable, p) == APR_SUCCESS
               && wait_writable(p)) {
        }
    }
    free(msg);
    wsock_unref(p->wc);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mutex);
    free(p);
    return NULL;
}

static int producer_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    char cmd[64], word[16];
    long n, size;
    pthread_attr_t attr;
    pthread_t t;
    producer *p;

    if (!is_text || len >= sizeof(cmd)) {
        return 1003;
    }
    memcpy(cmd, data, len);
    cmd[len] = '\0';
    if (sscanf(cmd, "%15s %ld %ld", word, &n, &size) != 3 || n < 1 || size < 4
        || size > 1048576 || (strcmp(word, "produce") && strcmp(word, "produce-send"))) {
        return 1003;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        return 1011;
    }
    p->wc = wc;
    p->n = n;
    p->size = size;
    p->plain = strcmp(word, "produce-send") == 0;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    wsock_ref(wc);                  /* the thread's, dropped when it ends */
    if (pthread_create(&t, &attr, produce, p) != 0) {
        wsock_unref(wc);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->mutex);
        free(p);
        pthread_attr_destroy(&attr);
        return 1011;
    }
    pthread_attr_destroy(&attr);
    return 0;
}

WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = {
    .api_version = WSOCK_API_VERSION,
    .name = "producer",
    .on_message = producer_message,
};
