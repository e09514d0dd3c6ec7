/*
 * wsock_capacity.h — start-up warnings about how many WebSockets the MPM
 * lets this server hold (wsock_capacity.c; docs/operations.md, "Startup
 * warnings").
 */
#ifndef WSOCK_CAPACITY_H
#define WSOCK_CAPACITY_H

/* From register_hooks (via wsock_process_register_hooks): the checks run
 * in the parent at post_config (each start and restart, not the first
 * pass over the configuration) and in `apachectl configtest`. */
void wsock_capacity_register_hooks(void);

#endif /* WSOCK_CAPACITY_H */
