/*
 * wsock_dashboard_assets.c — the dashboard page, its script and its style,
 * built into the module from src/ops/dashboard/ (the assembler's .incbin:
 * the files stay files, easy to read and lint, and nothing is fetched at
 * run time).  WSOCK_DASHBOARD_DIR is set by Makefile.am.
 */
#include <string.h>

#include "wsock_dashboard.h"

#ifndef WSOCK_DASHBOARD_DIR
#error "WSOCK_DASHBOARD_DIR must name src/ops/dashboard (Makefile.am sets it)"
#endif

/* name: a symbol; file: under WSOCK_DASHBOARD_DIR.  A NUL follows the
 * data, which the length leaves out. */
#define WSOCK_INCBIN(name, file)                                             \
    __asm__(".section .rodata\n"                                             \
            ".global wsock_asset_" #name "\n"                                \
            ".hidden wsock_asset_" #name "\n"                                \
            ".type wsock_asset_" #name ", @object\n"                         \
            ".balign 16\n"                                                   \
            "wsock_asset_" #name ":\n"                                       \
            ".incbin \"" WSOCK_DASHBOARD_DIR "/" file "\"\n"                 \
            ".byte 0\n"                                                      \
            ".previous\n");                                                  \
    extern const char wsock_asset_##name[]

WSOCK_INCBIN(page, "dashboard.html");
WSOCK_INCBIN(script, "dashboard.js");
WSOCK_INCBIN(style, "dashboard.css");
WSOCK_INCBIN(icon, "favicon.svg");

int wsock_dashboard_asset_find(const char *name, wsock_dashboard_asset *out)
{
    static const wsock_dashboard_asset assets[] = {
        { "", "text/html; charset=utf-8", wsock_asset_page, 0 },
        { "dashboard.js", "text/javascript; charset=utf-8", wsock_asset_script, 0 },
        { "dashboard.css", "text/css; charset=utf-8", wsock_asset_style, 0 },
        { "favicon.svg", "image/svg+xml", wsock_asset_icon, 0 },
    };

    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
        if (strcmp(assets[i].name, name) == 0) {
            *out = assets[i];
            /* the files hold no NUL: their end is the one added */
            out->len = strlen(out->data);
            return 1;
        }
    }
    return 0;
}
