/*
 * wsock_frame_parser.c — incremental RFC 6455 frame parser.
 *
 * Works on any chunking of the byte stream: the header is gathered into a
 * small array, data payloads are unmasked in place and handed to the sink as
 * they arrive, control payloads (at most 125 bytes) are gathered whole.
 * Every rule that can be decided from a header (reserved bits and opcodes,
 * masking, fragmentation order, control-frame limits, minimal lengths, the
 * message size limit) is decided before any of the payload is accepted.
 */
#include <string.h>

#include "wsock_codec.h"

enum { STAGE_HEADER = 0, STAGE_PAYLOAD = 1 };

void wsock_parser_init(wsock_parser *p, wsock_role role, uint64_t max_message_size)
{
    memset(p, 0, sizeof(*p));
    p->role = role;
    p->max_message_size = max_message_size;
    p->stage = STAGE_HEADER;
    p->hdr_need = 2;
    p->msg_op = WSOCK_OP_CONT;
    wsock_utf8_reset(&p->utf8);
}

int wsock_parser_in_message(const wsock_parser *p)
{
    return p->msg_op != WSOCK_OP_CONT;
}

int wsock_parser_mid_frame(const wsock_parser *p)
{
    return p->hdr_have != 0;        /* reset when a frame's payload ends */
}

static wsock_parse_result fail(wsock_parser *p, unsigned code, const char *why)
{
    p->failed = 1;
    p->error_code = code;
    p->error_reason = why;
    return WSOCK_PARSE_ERROR;
}

static int is_control(wsock_opcode op)
{
    return (op & 0x8) != 0;
}

/* Checks the first two header bytes; sets hdr_need to the full header size. */
static wsock_parse_result check_base_header(wsock_parser *p)
{
    uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
    unsigned len7 = b1 & 0x7F;

    p->fin = (b0 & 0x80) != 0;
    p->op = (wsock_opcode)(b0 & 0x0F);
    p->masked = (b1 & 0x80) != 0;

    if (b0 & 0x70 & ~p->allowed_rsv) {
        return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "reserved bits set");
    }
    /* RFC 7692 §6: RSV1 marks a compressed message on its first frame
     * only; never on a continuation or a control frame. */
    p->rsv1 = (b0 & 0x40) != 0;
    if (p->rsv1 && p->op == WSOCK_OP_CONT) {
        return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "RSV1 set on a continuation frame");
    }
    if (p->rsv1 && is_control(p->op)) {
        return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "RSV1 set on a control frame");
    }
    switch (p->op) {
    case WSOCK_OP_CONT:
        if (p->msg_op == WSOCK_OP_CONT) {
            return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR,
                        "continuation frame without a message to continue");
        }
        break;
    case WSOCK_OP_TEXT:
    case WSOCK_OP_BINARY:
        if (p->msg_op != WSOCK_OP_CONT) {
            return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR,
                        "new data frame while a fragmented message is open");
        }
        break;
    case WSOCK_OP_CLOSE:
    case WSOCK_OP_PING:
    case WSOCK_OP_PONG:
        if (!p->fin) {
            return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "fragmented control frame");
        }
        if (len7 > WSOCK_MAX_CONTROL_PAYLOAD) {
            return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR,
                        "control frame payload longer than 125 bytes");
        }
        break;
    default:
        return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "reserved opcode");
    }
    if (p->role == WSOCK_ROLE_SERVER && !p->masked) {
        return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "client frame not masked");
    }
    if (p->role == WSOCK_ROLE_CLIENT && p->masked) {
        return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "server frame masked");
    }
    p->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (p->masked ? 4 : 0);
    return WSOCK_PARSE_OK;
}

/* Decodes the payload length and key once the whole header is in. */
static wsock_parse_result finish_header(wsock_parser *p)
{
    unsigned len7 = p->hdr[1] & 0x7F;
    size_t at = 2;
    uint64_t len = len7;

    if (len7 == 126) {
        len = ((uint64_t)p->hdr[2] << 8) | p->hdr[3];
        at = 4;
        if (len < 126) {
            return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "non-minimal 16-bit length");
        }
    }
    else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) {
            len = (len << 8) | p->hdr[2 + i];
        }
        at = 10;
        if (len >> 63) {
            return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "64-bit length with the top bit set");
        }
        if (len <= 0xFFFF) {
            return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "non-minimal 64-bit length");
        }
    }
    if (p->masked) {
        memcpy(p->key, p->hdr + at, 4);
    }
    p->frame_len = len;
    p->frame_done = 0;

    if (!is_control(p->op)) {
        /* Decide the size limit from the header, before buffering anything. */
        uint64_t so_far = (p->op == WSOCK_OP_CONT) ? p->msg_len : 0;
        int compressed = (p->op == WSOCK_OP_CONT) ? p->msg_compressed : p->rsv1;
        uint64_t max = p->max_message_size;

        if (max && compressed) {
            max += WSOCK_COMPRESSED_SLACK(max);
        }
        if (max && (len > max || so_far + len > max)) {
            return fail(p, WSOCK_CLOSE_TOO_BIG, "message too big");
        }
        if (p->op != WSOCK_OP_CONT) {
            p->msg_compressed = p->rsv1;
            p->msg_op = p->op;
            p->msg_len = 0;
            p->msg_first_pending = 1;
            wsock_utf8_reset(&p->utf8);
        }
    }
    p->stage = STAGE_PAYLOAD;
    return WSOCK_PARSE_OK;
}

/* Validates a complete control frame and hands it to the sink. */
static wsock_parse_result deliver_control(wsock_parser *p, const wsock_parser_sink *sink,
                                          void *ud)
{
    size_t n = (size_t)p->frame_len;
    unsigned code = 0;
    const uint8_t *body = p->ctrl;

    if (p->op == WSOCK_OP_CLOSE) {
        if (n == 1) {
            return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "close payload of 1 byte");
        }
        code = WSOCK_CLOSE_NO_STATUS;
        if (n >= 2) {
            code = ((unsigned)p->ctrl[0] << 8) | p->ctrl[1];
            if (!wsock_close_code_is_valid(code)) {
                return fail(p, WSOCK_CLOSE_PROTOCOL_ERROR, "invalid close code");
            }
            body += 2;
            n -= 2;
            if (!wsock_utf8_valid(body, n)) {
                return fail(p, WSOCK_CLOSE_INVALID_DATA, "close reason is not UTF-8");
            }
        }
    }
    if (sink->on_control && sink->on_control(ud, p->op, code, body, n)) {
        return WSOCK_PARSE_STOPPED;
    }
    return WSOCK_PARSE_OK;
}

static void next_frame(wsock_parser *p)
{
    p->stage = STAGE_HEADER;
    p->hdr_have = 0;
    p->hdr_need = 2;
}

wsock_parse_result wsock_parser_feed(wsock_parser *p, uint8_t *buf, size_t len,
                                     const wsock_parser_sink *sink, void *ud,
                                     size_t *consumed)
{
    size_t pos = 0;
    wsock_parse_result rc = WSOCK_PARSE_OK;

    *consumed = 0;
    if (p->failed) {
        return WSOCK_PARSE_ERROR;
    }

    for (;;) {
        if (p->stage == STAGE_HEADER) {
            while (p->hdr_have < p->hdr_need && pos < len) {
                p->hdr[p->hdr_have++] = buf[pos++];
                if (p->hdr_have == 2 && (rc = check_base_header(p)) != WSOCK_PARSE_OK) {
                    goto out;
                }
            }
            if (p->hdr_have < p->hdr_need) {
                break;                      /* need more input */
            }
            if ((rc = finish_header(p)) != WSOCK_PARSE_OK) {
                goto out;
            }
        }

        /* STAGE_PAYLOAD */
        {
            uint64_t left = p->frame_len - p->frame_done;
            size_t n = (size_t)((uint64_t)(len - pos) < left ? (uint64_t)(len - pos) : left);
            uint8_t *chunk = buf + pos;
            int frame_complete = (p->frame_done + n == p->frame_len);

            if (n == 0 && !frame_complete) {
                break;                      /* need more input */
            }
            if (p->masked && n) {
                wsock_mask(chunk, n, p->key, (size_t)(p->frame_done & 3));
            }

            if (is_control(p->op)) {
                memcpy(p->ctrl + p->frame_done, chunk, n);
                p->frame_done += n;
                pos += n;
                if (!frame_complete) {
                    break;
                }
                next_frame(p);
                rc = deliver_control(p, sink, ud);
                if (rc != WSOCK_PARSE_OK) {
                    goto out;
                }
                continue;
            }

            /* Data frame (TEXT, BINARY or CONT of the open message). */
            {
                int last = frame_complete && p->fin;
                int first = p->msg_first_pending;
                wsock_opcode mop = p->msg_op;

                /* (A compressed message is checked once inflated.) */
                if (mop == WSOCK_OP_TEXT && n && !p->msg_compressed) {
                    if (wsock_utf8_feed(&p->utf8, chunk, n) == WSOCK_UTF8_INVALID) {
                        rc = fail(p, WSOCK_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
                        goto out;
                    }
                }
                if (last && mop == WSOCK_OP_TEXT && p->utf8.need != 0 && !p->msg_compressed) {
                    rc = fail(p, WSOCK_CLOSE_INVALID_DATA,
                              "text message ends inside a UTF-8 sequence");
                    goto out;
                }
                p->frame_done += n;
                p->msg_len += n;
                pos += n;
                if (frame_complete) {
                    next_frame(p);
                    if (last) {
                        p->msg_op = WSOCK_OP_CONT;
                    }
                }
                /* Empty chunks matter only where they open or close a message. */
                if (n || first || last) {
                    p->msg_first_pending = 0;
                    if (sink->on_data && sink->on_data(ud, mop, chunk, n, first, last)) {
                        rc = WSOCK_PARSE_STOPPED;
                        goto out;
                    }
                }
                if (!frame_complete) {
                    break;
                }
            }
        }
    }

out:
    *consumed = pos;
    return rc;
}
