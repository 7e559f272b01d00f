#define _GNU_SOURCE /* strcasestr */
/* sn_bwire: the broker's parsing. Nothing here allocates; every read is bounded by the
 * length given, and every copy by the destination's size. */
#include "sn_bwire.h"
#include "sn_error.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t len, const char *uri, const char *why)
{
    if (err && len)
        snprintf(err, len, "broker URI '%s': %s", uri, why);
    return SN_EINVAL;
}

int sn_bsize_parse(const char *s, const char **end, size_t *out)
{
    if (!isdigit((unsigned char)*s))
        return SN_EINVAL;
    unsigned long long v = 0;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (unsigned)(*s++ - '0');
        if (v > (1ull << 31))
            return SN_EINVAL;
    }
    if (*s == 'k' || *s == 'K')
        v *= 1024, s++;
    else if (*s == 'm' || *s == 'M')
        v *= 1024 * 1024, s++;
    if (*s == 'b' || *s == 'B')
        s++;
    if (v > (1ull << 31))
        return SN_EINVAL;
    *out = (size_t)v;
    if (end)
        *end = s;
    return SN_OK;
}

static int parse_option(const char *uri, const char *opt, size_t n, sn_buri *u, char *err,
                        size_t errlen)
{
    if (n == 6 && !strncmp(opt, "packet", 6)) {
        u->packet = 1;
        return SN_OK;
    }
    if (n > 7 && !strncmp(opt, "packet=", 7)) {
        u->packet = 1;
        const char *p = opt + 7, *e;
        if (sn_bsize_parse(p, &e, &u->in_max) != SN_OK)
            return fail(err, errlen, uri, "packet=IN:OUT expects sizes such as 10k or 4m");
        if (*e == ':' || *e == ',') {
            if (sn_bsize_parse(e + 1, &e, &u->out_max) != SN_OK)
                return fail(err, errlen, uri, "packet=IN:OUT expects sizes such as 10k or 4m");
        }
        if (e != opt + n)
            return fail(err, errlen, uri, "packet=IN:OUT expects sizes such as 10k or 4m");
        if (u->in_max && u->in_max <= SN_BFRAME_HEADER)
            return fail(err, errlen, uri, "packet IN must be more than 4 bytes");
        return SN_OK;
    }
    if (n == 7 && !strncmp(opt, "msgpack", 7)) {
        u->msgpack = 1;
        return SN_OK;
    }
    if (n == 4 && !strncmp(opt, "json", 4)) {
        u->json = 1;
        return SN_OK;
    }
    if (n > 3 && !strncmp(opt, "ca=", 3)) {
        if (n - 3 >= sizeof u->ca)
            return fail(err, errlen, uri, "ca=FILE: the path is too long");
        memcpy(u->ca, opt + 3, n - 3);
        u->ca[n - 3] = 0;
        return SN_OK;
    }
    if (n == 11 && !strncmp(opt, "verify=none", 11)) {
        u->noverify = 1;
        return SN_OK;
    }
    return fail(err, errlen, uri, "unknown option (packet, msgpack, json, ca, verify)");
}

int sn_buri_parse(const char *uri, sn_buri *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    const char *p = strstr(uri, "://");
    if (!p)
        return fail(err, errlen, uri, "expected tcp://, tls://, ws://, wss:// or udp://");
    size_t sl = (size_t)(p - uri);
    if (sl == 3 && !strncasecmp(uri, "tcp", 3))
        u->kind = SN_BURI_TCP;
    else if (sl == 2 && !strncasecmp(uri, "ws", 2))
        u->kind = SN_BURI_WS;
    else if (sl == 3 && !strncasecmp(uri, "udp", 3))
        u->kind = SN_BURI_UDP;
    else if (sl == 3 && !strncasecmp(uri, "tls", 3))
        u->kind = SN_BURI_TCP, u->tls = 1;
    else if (sl == 3 && !strncasecmp(uri, "wss", 3))
        u->kind = SN_BURI_WS, u->tls = 1;
    else
        return fail(err, errlen, uri, "expected tcp://, tls://, ws://, wss:// or udp://");
    p += 3;
    const char *hs = p, *he;
    if (*p == '[') { /* [v6]:port */
        const char *c = strchr(p, ']');
        if (!c)
            return fail(err, errlen, uri, "unclosed '['");
        hs = p + 1;
        he = c;
        p = c + 1;
    } else {
        p += strcspn(p, ":/?");
        he = p;
    }
    if ((size_t)(he - hs) >= sizeof u->host)
        return fail(err, errlen, uri, "host too long");
    memcpy(u->host, hs, (size_t)(he - hs));
    if (*p != ':')
        return fail(err, errlen, uri, "expected :port");
    p++;
    size_t pl = strcspn(p, "/?");
    if (pl == 0 || pl >= sizeof u->port)
        return fail(err, errlen, uri, "expected :port");
    for (size_t i = 0; i < pl; i++)
        if (!isdigit((unsigned char)p[i]))
            return fail(err, errlen, uri, "the port must be a number");
    memcpy(u->port, p, pl);
    p += pl;
    strcpy(u->path, "/");
    if (*p == '/') {
        size_t l = strcspn(p, "?");
        if (u->kind != SN_BURI_WS && l > 1)
            return fail(err, errlen, uri, "only ws:// and wss:// take a path");
        if (l >= sizeof u->path)
            return fail(err, errlen, uri, "path too long");
        memcpy(u->path, p, l);
        u->path[l] = 0;
        p += l;
    }
    if (*p == '?') {
        p++;
        while (*p) {
            size_t n = strcspn(p, "&");
            if (n && parse_option(uri, p, n, u, err, errlen) != SN_OK)
                return SN_EINVAL;
            p += n;
            if (*p == '&')
                p++;
        }
    }
    if ((u->ca[0] || u->noverify) && !u->tls)
        return fail(err, errlen, uri, "ca and verify are for tls:// and wss:// only");
    if (u->packet && u->kind != SN_BURI_TCP)
        return fail(err, errlen, uri, "packet is for tcp:// and tls:// only");
    if (u->json && u->kind != SN_BURI_WS)
        return fail(err, errlen, uri, "json is for ws:// and wss:// text only");
    if (u->msgpack && u->kind == SN_BURI_TCP && !u->packet)
        return fail(err, errlen, uri, "msgpack over tcp:// needs packet (frames)");
    return SN_OK;
}

int sn_bframe_next(const unsigned char *buf, size_t len, size_t max, size_t *frame)
{
    if (len < SN_BFRAME_HEADER)
        return 0;
    uint32_t n = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
                 (uint32_t)buf[3] << 24;
    *frame = n;
    if (n < SN_BFRAME_HEADER)
        return SN_EPROTO;
    if (n > max)
        return SN_ELIMIT;
    return len >= n ? 1 : 0;
}

void sn_bframe_header(unsigned char out[4], size_t payload)
{
    uint32_t n = (uint32_t)(payload + SN_BFRAME_HEADER);
    out[0] = (unsigned char)n;
    out[1] = (unsigned char)(n >> 8);
    out[2] = (unsigned char)(n >> 16);
    out[3] = (unsigned char)(n >> 24);
}

/* One header line "Name: value" of the request; value trimmed into out. */
static int header(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
        return 0;
    const char *v = line + nl + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t vl = (size_t)(e - v);
    if (vl >= cap)
        vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = 0;
    return 1;
}

/* Is token among the comma-separated values of list (case-insensitive)? */
static int has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m && p[m - 1] == ' ')
            m--;
        if (m == tl && !strncasecmp(p, token, tl))
            return 1;
        p += n;
    }
    return 0;
}

int sn_bws_parse(const char *buf, size_t len, sn_bws_req *req)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
            end = buf + i + 4;
            break;
        }
    if (!end)
        return 0;
    memset(req, 0, sizeof *req);
    const char *line = buf;
    const char *eol = memchr(line, '\r', (size_t)(end - line));
    size_t l = (size_t)(eol - line);
    if (l < 4 || memcmp(line, "GET ", 4))
        return l >= 4 ? -405 : -400;
    const char *path = line + 4;
    const char *sp = memchr(path, ' ', (size_t)(eol - path));
    if (!sp || sp == path || (size_t)(sp - path) >= sizeof req->path)
        return -400;
    if ((size_t)(eol - sp) != 9 || memcmp(sp + 1, "HTTP/1.1", 8))
        return -400;
    memcpy(req->path, path, (size_t)(sp - path));
    char upgrade[128] = "", connection[256] = "", version[16] = "";
    for (line = eol + 2; line < end - 2; line = eol + 2) {
        eol = memchr(line, '\r', (size_t)(end - line));
        if (!eol || eol[1] != '\n')
            return -400;
        l = (size_t)(eol - line);
        if (!memchr(line, ':', l))
            return -400;
        if (!header(line, l, "Upgrade", upgrade, sizeof upgrade) &&
            !header(line, l, "Connection", connection, sizeof connection) &&
            !header(line, l, "Sec-WebSocket-Key", req->key, sizeof req->key))
            header(line, l, "Sec-WebSocket-Version", version, sizeof version);
    }
    if (!has_token(upgrade, "websocket") || !has_token(connection, "upgrade") ||
        strcmp(version, "13"))
        return -426;
    if (strlen(req->key) != 24) /* base64 of 16 bytes */
        return -400;
    sn_bws_accept(req->key, req->accept, sizeof req->accept);
    return (int)(end - buf);
}

void sn_bws_accept(const char *key, char *out, size_t cap)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char in[64 + sizeof guid];
    unsigned char sha[SHA_DIGEST_LENGTH];
    int n = snprintf(in, sizeof in, "%s%s", key, guid);
    SHA1((const unsigned char *)in, (size_t)n, sha);
    unsigned char b64[64];
    EVP_EncodeBlock(b64, sha, SHA_DIGEST_LENGTH);
    snprintf(out, cap, "%s", (const char *)b64);
}

size_t sn_bws_request(const sn_buri *u, const char *key, char *out, size_t cap)
{
    int v6 = strchr(u->host, ':') != NULL;
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     u->path[0] ? u->path : "/", v6 ? "[" : "", u->host, v6 ? "]" : "",
                     u->port, key);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* The value of header name in the header lines of buf[0..len) (copied into out), or NULL. */
static const char *answer_header(const char *buf, size_t len, const char *name, char *out,
                                 size_t cap)
{
    size_t nl = strlen(name);
    const char *p = memchr(buf, '\n', len), *end = buf + len;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            snprintf(out, cap, "%.*s", (int)(ve - v), v);
            return out;
        }
        p = eol;
    }
    return NULL;
}

int sn_bws_answer_check(const char *buf, size_t len, const char *accept, char *why, size_t cap)
{
    size_t sl = strcspn(buf, "\r\n");
    if (sl > len)
        sl = len;
    if (sl < 12 || strncmp(buf, "HTTP/1.1 101", 12) || (sl > 12 && buf[12] != ' ')) {
        snprintf(why, cap, "the server answered '%.*s', not 101", (int)(sl > 80 ? 80 : sl), buf);
        return SN_EPROTO;
    }
    char v[128];
    if (!answer_header(buf, len, "Upgrade", v, sizeof v) || strcasecmp(v, "websocket")) {
        snprintf(why, cap, "the 101 answer has no 'Upgrade: websocket'");
        return SN_EPROTO;
    }
    if (!answer_header(buf, len, "Connection", v, sizeof v) || !strcasestr(v, "upgrade")) {
        snprintf(why, cap, "the 101 answer has no 'Connection: Upgrade'");
        return SN_EPROTO;
    }
    if (!answer_header(buf, len, "Sec-WebSocket-Accept", v, sizeof v)) {
        snprintf(why, cap, "the 101 answer has no Sec-WebSocket-Accept");
        return SN_EPROTO;
    }
    if (strcmp(v, accept)) {
        snprintf(why, cap, "Sec-WebSocket-Accept is '%.40s', the key asks for '%s'", v, accept);
        return SN_EPROTO;
    }
    return SN_OK;
}

size_t sn_bws_response(const sn_bws_req *req, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     req->accept);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

int sn_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned min, cp;
        if ((c & 0xE0) == 0xC0)
            n = 1, min = 0x80, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            n = 2, min = 0x800, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            n = 3, min = 0x10000, cp = c & 0x07;
        else
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}
