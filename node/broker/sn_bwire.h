/* sn_bwire: what the broker reads from strings and from the wire without any socket: the
 * broker URIs, size limits ("10k", "4m"), length-prefixed frames, the WebSocket upgrade
 * request and UTF-8 validity. Pure functions, bounded by the lengths given. */
#ifndef SN_BWIRE_H
#define SN_BWIRE_H

#include <stddef.h>
#include <stdint.h>

typedef enum sn_buri_kind { SN_BURI_TCP = 1, SN_BURI_WS, SN_BURI_UDP } sn_buri_kind;

/* A parsed broker URI: tcp://host:port?packet=IN:OUT, ws://host:port/path, udp://host:port,
 * tls:// (as tcp) and wss:// (as ws) with kind TCP / WS and tls set, with the options msgpack,
 * json, and for a TLS join ca=FILE and verify=none. Sizes are 0 when not given. */
typedef struct sn_buri {
    sn_buri_kind kind;
    char host[256];
    char port[16];
    char path[256];       /* ws: the request path, default "/" */
    int packet;           /* tcp: 32-bit little-endian length frames */
    size_t in_max, out_max; /* packet=IN:OUT (bytes) */
    int msgpack, json;    /* decode each frame into Lua values */
    int tls;              /* tls:// (tcp over TLS), wss:// (ws over TLS) */
    int noverify;         /* join: verify=none (the peer's certificate is not checked) */
    char ca[256];         /* join: ca=FILE, the CAs that verify the peer (else --broker-ca) */
} sn_buri;

/* sn_buri_parse: fills *u from uri. SN_OK, or SN_EINVAL with a one-line reason in err. */
int sn_buri_parse(const char *uri, sn_buri *u, char *err, size_t errlen);

/* sn_bsize_parse: a size: digits with an optional k/K (1024) or m/M (1024*1024) suffix; *end
 * (optional) is set past it. SN_OK or SN_EINVAL (no digits, or past 2^31). */
int sn_bsize_parse(const char *s, const char **end, size_t *out);

/* Frames of tcp://...?packet: a 32-bit little-endian length counting the whole frame, its
 * own 4 bytes included (as a BSON document counts itself, so STAGE's clients fit). */
enum { SN_BFRAME_HEADER = 4 };

/* sn_bframe_next: looks at buf[0..len). 1 when a whole frame is there (*frame: its length
 * with the header); 0 when more bytes are needed; SN_ELIMIT when the announced length is
 * above max (*frame: that length); SN_EPROTO when it is below the header's 4 bytes. */
int sn_bframe_next(const unsigned char *buf, size_t len, size_t max, size_t *frame);
/* sn_bframe_header: writes the header of a frame carrying payload bytes into out[4]. */
void sn_bframe_header(unsigned char out[4], size_t payload);

/* The WebSocket upgrade (RFC 6455 section 4.2). */
typedef struct sn_bws_req {
    char path[256];
    char key[64];          /* Sec-WebSocket-Key */
    char accept[64];       /* the Sec-WebSocket-Accept answer */
} sn_bws_req;

/* sn_bws_parse: reads an HTTP upgrade request in buf[0..len). 0: incomplete (no blank line
 * yet); > 0: complete, the bytes it took (*req filled); < 0: refused, the HTTP status to
 * answer negated (-400 malformed, -426 not a version 13 WebSocket upgrade, -405 not GET). */
int sn_bws_parse(const char *buf, size_t len, sn_bws_req *req);
/* sn_bws_accept: the Sec-WebSocket-Accept value of key into out (at least 29 bytes). */
void sn_bws_accept(const char *key, char *out, size_t cap);
/* sn_bws_response: the 101 answer for req into out; its length, or 0 when cap is short. */
size_t sn_bws_response(const sn_bws_req *req, char *out, size_t cap);

/* sn_bws_request: the upgrade request of a ws:// join to u with key (a base64 nonce) into
 * out; its length, or 0 when cap is short. */
size_t sn_bws_request(const sn_buri *u, const char *key, char *out, size_t cap);
/* sn_bws_answer_check: the server's answer to our upgrade, buf[0..len) up to its blank line:
 * SN_OK when it is 101 with Upgrade: websocket, Connection: upgrade and Sec-WebSocket-Accept
 * equal to accept; else SN_EPROTO with what was wrong in why. */
int sn_bws_answer_check(const char *buf, size_t len, const char *accept, char *why, size_t cap);

/* sn_utf8_valid: 1 when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, at
 * most U+10FFFF), else 0. */
int sn_utf8_valid(const unsigned char *s, size_t len);

#endif
