/* sn_curve: CurveZMQ key files, the allow list, the CURVE socket options and the trust rules
 * (docs/security.md). Everything here is pure or touches only files and one socket at a time. */
#ifndef SN_CURVE_H
#define SN_CURVE_H

#include <stddef.h>
#include <stdint.h>

enum {
    SN_CURVE_Z85_LEN = 40,      /* a Curve25519 key in Z85 text, without the NUL */
    SN_CURVE_KEY_LEN = 32,      /* the same key in binary */
    SN_CURVE_ALLOW_MAX = 10000, /* keys in one allow file */
    SN_CURVE_LINE_MAX = 1024,   /* longest line read from a key or allow file */
    SN_CURVE_NAME_MAX = 63      /* longest node name in an allow file */
};

/* The ZAP domain set on every CURVE server socket; the handler refuses any other domain. */
#define SN_CURVE_ZAP_DOMAIN "stage-node"

/* A keypair loaded from a secret file. Opaque; the secret is wiped when destroyed. */
typedef struct sn_curve_keys sn_curve_keys;
/* A set of public keys allowed to connect. Opaque; immutable once loaded, so any thread may read.
 */
typedef struct sn_curve_allow sn_curve_allow;

/* sn_curve_keygen: writes a fresh keypair to path (mode 0600: "public-key = Z85" and
 * "secret-key = Z85" lines) and path.pub (mode 0644: the Z85 public key, one line).
 * SN_EINVAL "PATH exists" if either file exists (nothing is written); SN_EIO if a write
 * fails (nothing is left behind); SN_ENOTSUP if libzmq lacks CURVE. Detail goes to err. */
int sn_curve_keygen(const char *path, char *err, size_t errlen);

/* sn_curve_keys_load: reads a file written by sn_curve_keygen into *out (caller owns).
 * SN_ENOENT (missing or unreadable), SN_EINVAL (bad format, key not 40 chars of Z85, public
 * key not matching the secret), SN_ENOMEM. A one-line message naming the file goes to err. */
int sn_curve_keys_load(const char *path, sn_curve_keys **out, char *err, size_t errlen);
/* sn_curve_keys_from_z85: a keypair from a Z85 secret key (the public key is derived), for
 * tests and for callers that hold keys elsewhere. SN_EINVAL if secret is not valid Z85. */
int sn_curve_keys_from_z85(const char *secret_z85, sn_curve_keys **out);
/* sn_curve_keys_destroy: wipes and frees *kp (NULL is fine) and nulls it. */
void sn_curve_keys_destroy(sn_curve_keys **kp);
/* sn_curve_keys_public: the Z85 public key (40 chars, NUL-terminated), owned by k. */
const char *sn_curve_keys_public(const sn_curve_keys *k);

/* sn_curve_allow_load: reads an allow file: "<Z85 public key> <node name>" per line (the node
 * that key authenticates as); blank lines and lines starting with '#' are skipped, a '#' after
 * the name starts a comment; surrounding spaces are ignored. A key without a name, a bad name
 * (1..SN_CURVE_NAME_MAX of A-Z a-z 0-9 . _ -) or a key listed for two names is a bad line. Any
 * bad line rejects the whole file (SN_EINVAL) and every bad line is named "PATH:LINE: why" in err, one per line
 * (truncated with "..." if err is short). More than SN_CURVE_ALLOW_MAX keys: SN_ELIMIT.
 * No key at all: SN_EINVAL (nobody could connect). SN_ENOENT if unreadable. Caller owns *out. */
int sn_curve_allow_load(const char *path, sn_curve_allow **out, char *err, size_t errlen);
/* sn_curve_allow_parse: the same from text (len bytes); name is used in messages. */
int sn_curve_allow_parse(const char *text, size_t len, const char *name, sn_curve_allow **out,
                         char *err, size_t errlen);
/* sn_curve_allow_of_keys: an allow list holding only k's public key, as node name (tests).
 * SN_EINVAL (not a node name), SN_ENOMEM. Caller owns *out. */
int sn_curve_allow_of_keys(const sn_curve_keys *k, const char *name, sn_curve_allow **out);
/* sn_curve_allow_destroy: frees *ap (NULL is fine) and nulls it. */
void sn_curve_allow_destroy(sn_curve_allow **ap);
/* sn_curve_allow_count: the number of distinct keys. */
size_t sn_curve_allow_count(const sn_curve_allow *a);
/* sn_curve_allow_has: 1 if the 32-byte binary key is allowed, else 0. Any thread. */
int sn_curve_allow_has(const sn_curve_allow *a, const uint8_t key[SN_CURVE_KEY_LEN]);
/* sn_curve_allow_has_z85: the same for a Z85 key; 0 for anything not a valid key. */
int sn_curve_allow_has_z85(const sn_curve_allow *a, const char *z85);
/* sn_curve_allow_name: the node name the 32-byte key authenticates as (owned by a), or NULL
 * when the key is not allowed. Any thread. */
const char *sn_curve_allow_name(const sn_curve_allow *a, const uint8_t key[SN_CURVE_KEY_LEN]);
/* sn_curve_allow_key_of: the public key of node name (the one listed last, when a rotation
 * lists two) in key: SN_OK, or SN_ENOENT when name is not in the list. Any thread. */
int sn_curve_allow_key_of(const sn_curve_allow *a, const char *name,
                          uint8_t key[SN_CURVE_KEY_LEN]);

/* sn_curve_server: makes zsock (the node's ROUTER) a CURVE server with k's secret key, ZAP
 * domain SN_CURVE_ZAP_DOMAIN and ZMQ_ZAP_ENFORCE_DOMAIN, so that no connection is admitted
 * unless a ZAP handler says 200. Call before zmq_bind. SN_ENOTSUP if libzmq lacks CURVE or
 * the enforce option (the node must then refuse to start: it could not fail closed);
 * SN_EIO for other setsockopt failures. Thread owning zsock. */
int sn_curve_server(void *zsock, const sn_curve_keys *k);
/* sn_curve_client: makes zsock (a DEALER to a peer) a CURVE client with k's keypair, and
 * server (the peer's public key, from the allow list by the peer's name) as the server key, so
 * only that peer can complete the handshake. Call before zmq_connect. SN_ENOTSUP / SN_EIO as
 * above. Thread owning zsock. */
int sn_curve_client(void *zsock, const sn_curve_keys *k, const uint8_t server[SN_CURVE_KEY_LEN]);

/* sn_curve_address_is_loopback: 1 if host (a bare address: "127.0.0.1", "::1", "[::1]",
 * "::ffff:127.0.0.1", "localhost") is on loopback, else 0 (NULL, names, anything else). Pure. */
int sn_curve_address_is_loopback(const char *host);
/* sn_curve_endpoint_is_loopback: 1 if a ZeroMQ endpoint only reaches this host: tcp:// on a
 * loopback address, ipc://, inproc://. 0 for wildcards ("*", 0.0.0.0, ::), other addresses,
 * interface names, other transports and anything malformed. Pure. */
int sn_curve_endpoint_is_loopback(const char *endpoint);
/* sn_curve_listen_check: whether the node may take cluster traffic on endpoint (its --listen,
 * or the seed it joins): SN_OK if CURVE is on or insecure is set (loopback is no exception);
 * else SN_EINVAL with a one-line message naming the endpoint in err. Pure. */
int sn_curve_listen_check(const char *endpoint, int curve_on, int insecure, char *err,
                          size_t errlen);
/* sn_curve_trust_bytecode: the trust rule for code (Lua bytecode, metatables) received on a
 * connection: SN_OK only if the connection is authenticated as node peer (CurveZMQ: ZAP
 * admitted its key); NULL or "" (no CURVE: loopback, ipc, --insecure) is SN_EUNTRUSTED. Pure. */
int sn_curve_trust_bytecode(const char *peer);

#endif
