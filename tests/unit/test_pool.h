/*
 * test_pool.h — the APR pool fixture of the unit tests that need APR.
 */
#ifndef WSOCK_TEST_POOL_H
#define WSOCK_TEST_POOL_H

#include <apr_general.h>
#include <apr_pools.h>
#include <check.h>

static apr_pool_t *pool;

static void pool_setup(void)
{
    ck_assert_int_eq(apr_initialize(), APR_SUCCESS);
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void pool_teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
    apr_terminate();
}

#endif /* WSOCK_TEST_POOL_H */
