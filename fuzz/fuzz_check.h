/*
 * fuzz_check.h — the invariant check of the fuzz harnesses: a broken
 * invariant aborts, which libFuzzer reports as a crash and keeps the input.
 */
#ifndef WSOCK_FUZZ_CHECK_H
#define WSOCK_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, what)                                                       \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "invariant broken: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            abort();                                                            \
        }                                                                       \
    } while (0)

#endif /* WSOCK_FUZZ_CHECK_H */
