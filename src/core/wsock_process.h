/*
 * wsock_process.h — the hooks of mod_wsock's process life
 * (wsock_process.c).
 */
#ifndef WSOCK_PROCESS_H
#define WSOCK_PROCESS_H

/* From register_hooks: pre/post_config, monitor, child_status, child_init,
 * child_stopping. */
void wsock_process_register_hooks(void);

#endif /* WSOCK_PROCESS_H */
