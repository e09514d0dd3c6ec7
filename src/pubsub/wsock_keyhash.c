/*
 * wsock_keyhash.c — SipHash-2-4 through OpenSSL's EVP_MAC (see
 * wsock_keyhash.h).
 *
 * An EVP_MAC_CTX may not be shared between threads, and making one per
 * call costs an allocation; so each thread keeps one, made on its first
 * call and freed when the thread ends, and rekeys it per call (~0.1 us).
 */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <apr_general.h>

#include "wsock_keyhash.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;
static EVP_MAC *siphash;            /* NULL if OpenSSL does not have it */

static void free_ctx(void *ctx)
{
    EVP_MAC_CTX_free(ctx);
}

static void setup(void)
{
    siphash = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    pthread_key_create(&ctx_key, free_ctx);
}

apr_status_t wsock_hashkey_random(wsock_hashkey *key)
{
    return apr_generate_random_bytes(key->k, sizeof(key->k));
}

/* Without a context (out of memory, or no SipHash in this OpenSSL): a
 * keyed FNV-1a, weaker, but still not computable from outside. */
static uint64_t fallback(const wsock_hashkey *key, const unsigned char *p, size_t len)
{
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < sizeof(key->k) + len; i++) {
        h ^= i < sizeof(key->k) ? key->k[i] : p[i - sizeof(key->k)];
        h *= 1099511628211ull;
    }
    return h;
}

uint64_t wsock_keyhash(const wsock_hashkey *key, const void *data, size_t len)
{
    EVP_MAC_CTX *ctx;
    unsigned char out[8];
    size_t outlen = 0, size = sizeof(out);
    OSSL_PARAM params[2];
    uint64_t h = 0;

    pthread_once(&once, setup);
    ctx = siphash ? pthread_getspecific(ctx_key) : NULL;
    if (siphash && ctx == NULL && (ctx = EVP_MAC_CTX_new(siphash)) != NULL) {
        pthread_setspecific(ctx_key, ctx);
    }
    params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx && EVP_MAC_init(ctx, key->k, sizeof(key->k), params)
        && EVP_MAC_update(ctx, data, len)
        && EVP_MAC_final(ctx, out, &outlen, sizeof(out)) && outlen == sizeof(out)) {
        for (int i = 7; i >= 0; i--) {
            h = (h << 8) | out[i];  /* SipHash's output is little-endian */
        }
    }
    else {
        h = fallback(key, data, len);
    }
    return h ? h : 1;
}
