/* sn_curve: key files, the allow list, CURVE socket options and the trust rules.
 * Only libzmq's public API is used for keys (zmq_curve_keypair/public, zmq_z85_*). */
#include "sn_curve.h"
#include "sn_error.h"

#include <zmq.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ZMQ_ZAP_ENFORCE_DOMAIN is a draft option in libzmq 4.3: the header hides it unless
 * ZMQ_BUILD_DRAFT_API, but distribution builds accept it at run time. Its number is fixed. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

enum {
    KEY_FILE_MAX = 64 * 1024,        /* a keypair file is three short lines */
    ALLOW_FILE_MAX = 4 * 1024 * 1024 /* 10,000 keys with generous comments */
};

struct sn_curve_keys {
    uint8_t public_key[SN_CURVE_KEY_LEN];
    uint8_t secret_key[SN_CURVE_KEY_LEN];
    char public_z85[SN_CURVE_Z85_LEN + 1];
};

typedef struct allow_entry {
    uint8_t key[SN_CURVE_KEY_LEN];
    char name[SN_CURVE_NAME_MAX + 1]; /* the node this key authenticates */
    size_t line;                      /* in the file, for "listed twice" messages */
} allow_entry;

struct sn_curve_allow {
    size_t n;
    allow_entry *keys; /* sorted by key, distinct keys */
};

/* ---- small helpers ---- */

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* An error buffer that collects several lines; on overflow it ends with "...". */
typedef struct errbuf {
    char *buf;
    size_t len, pos;
    int full;
} errbuf;

static void errbuf_init(errbuf *e, char *buf, size_t len)
{
    e->buf = buf;
    e->len = buf ? len : 0;
    e->pos = 0;
    e->full = 0;
    if (e->len) buf[0] = '\0';
}

__attribute__((format(printf, 2, 3))) static void errbuf_add(errbuf *e, const char *fmt, ...)
{
    if (e->len == 0 || e->full) return;
    size_t room = e->len - e->pos;
    int sep = e->pos > 0;
    if (sep) {
        if (room < 2) goto overflow;
        e->buf[e->pos++] = '\n';
        e->buf[e->pos] = '\0';
        room--;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->buf + e->pos, room, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < room) {
        e->pos += (size_t)n;
        return;
    }
overflow:
    e->full = 1;
    if (e->len >= 4) memcpy(e->buf + e->len - 4, "...", 4);
}

/* A one-line message into a caller's buffer. */
__attribute__((format(printf, 3, 4))) static void errset(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Reads a whole regular file (at most max bytes) into a NUL-terminated buffer (caller owns). */
static int read_file(const char *path, size_t max, char **out, size_t *outlen, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        errset(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOMEM ? SN_ENOMEM : SN_ENOENT;
    }
    char *buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        errset(err, errlen, "%s: out of memory", path);
        return SN_ENOMEM;
    }
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        errset(err, errlen, "%s: %s", path, strerror(e));
        return SN_ENOENT;
    }
    if (n > max) {
        free(buf);
        errset(err, errlen, "%s: larger than %zu bytes", path, max);
        return SN_ELIMIT;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return SN_OK;
}

/* Decodes exactly 40 chars of canonical Z85 (re-encoding gives the same text). */
static int z85_key_decode(const char *s, size_t n, uint8_t key[SN_CURVE_KEY_LEN])
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   ".-:+=^!/*?&<>()[]{}@%$#";
    if (n != SN_CURVE_Z85_LEN) return SN_EINVAL;
    char text[SN_CURVE_Z85_LEN + 1], again[SN_CURVE_Z85_LEN + 1];
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || !strchr(alphabet, s[i])) return SN_EINVAL;
        text[i] = s[i];
    }
    text[n] = '\0';
    if (!zmq_z85_decode(key, text)) return SN_EINVAL;
    /* A group like "#####" overflows 32 bits; such text is not a key anyone generated. */
    if (!zmq_z85_encode(again, key, SN_CURVE_KEY_LEN) || memcmp(again, text, n) != 0)
        return SN_EINVAL;
    return SN_OK;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits text into lines; for each calls fn with the line trimmed of surrounding spaces. */
typedef int (*line_fn)(void *ctx, size_t lineno, const char *s, size_t n);

static int each_line(const char *text, size_t len, line_fn fn, void *ctx)
{
    size_t lineno = 0, i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && text[i] != '\n')
            i++;
        size_t end = i;
        if (i < len) i++; /* skip the newline */
        lineno++;
        while (start < end && is_space(text[start]))
            start++;
        while (end > start && is_space(text[end - 1]))
            end--;
        int rc = fn(ctx, lineno, text + start, end - start);
        if (rc != SN_OK) return rc;
    }
    return SN_OK;
}

/* ---- keypairs ---- */

static int keys_fill(sn_curve_keys *k, const uint8_t secret[SN_CURVE_KEY_LEN])
{
    char secret_z85[SN_CURVE_Z85_LEN + 1];
    memcpy(k->secret_key, secret, SN_CURVE_KEY_LEN);
    if (!zmq_z85_encode(secret_z85, k->secret_key, SN_CURVE_KEY_LEN)) return SN_EINVAL;
    int rc = zmq_curve_public(k->public_z85, secret_z85);
    wipe(secret_z85, sizeof secret_z85);
    if (rc != 0) return errno == ENOTSUP ? SN_ENOTSUP : SN_EINVAL;
    if (!zmq_z85_decode(k->public_key, k->public_z85)) return SN_EINVAL;
    return SN_OK;
}

int sn_curve_keys_from_z85(const char *secret_z85, sn_curve_keys **out)
{
    uint8_t secret[SN_CURVE_KEY_LEN];
    if (!secret_z85 || z85_key_decode(secret_z85, strlen(secret_z85), secret) != SN_OK)
        return SN_EINVAL;
    sn_curve_keys *k = calloc(1, sizeof *k);
    if (!k) return SN_ENOMEM;
    int rc = keys_fill(k, secret);
    wipe(secret, sizeof secret);
    if (rc != SN_OK) {
        sn_curve_keys_destroy(&k);
        return rc;
    }
    *out = k;
    return SN_OK;
}

void sn_curve_keys_destroy(sn_curve_keys **kp)
{
    if (!kp || !*kp) return;
    wipe(*kp, sizeof **kp);
    free(*kp);
    *kp = NULL;
}

const char *sn_curve_keys_public(const sn_curve_keys *k)
{
    return k->public_z85;
}

typedef struct keys_parse {
    const char *path;
    char *err;
    size_t errlen;
    int have_public, have_secret;
    uint8_t public_key[SN_CURVE_KEY_LEN];
    uint8_t secret_key[SN_CURVE_KEY_LEN];
} keys_parse;

static int keys_line(void *ctx, size_t lineno, const char *s, size_t n)
{
    keys_parse *p = ctx;
    if (n == 0 || s[0] == '#') return SN_OK;
    static const char *const names[] = {"public-key", "secret-key"};
    for (int which = 0; which < 2; which++) {
        size_t nl = strlen(names[which]);
        if (n < nl || memcmp(s, names[which], nl) != 0) continue;
        size_t i = nl;
        while (i < n && is_space(s[i]))
            i++;
        if (i >= n || s[i] != '=') break;
        i++;
        while (i < n && is_space(s[i]))
            i++;
        int *have = which ? &p->have_secret : &p->have_public;
        uint8_t *key = which ? p->secret_key : p->public_key;
        if (*have) {
            errset(p->err, p->errlen, "%s:%zu: %s given twice", p->path, lineno, names[which]);
            return SN_EINVAL;
        }
        if (z85_key_decode(s + i, n - i, key) != SN_OK) {
            errset(p->err, p->errlen, "%s:%zu: %s is not 40 characters of Z85", p->path, lineno,
                   names[which]);
            return SN_EINVAL;
        }
        *have = 1;
        return SN_OK;
    }
    errset(p->err, p->errlen, "%s:%zu: expected \"public-key = KEY\" or \"secret-key = KEY\"",
           p->path, lineno);
    return SN_EINVAL;
}

int sn_curve_keys_load(const char *path, sn_curve_keys **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, KEY_FILE_MAX, &text, &len, err, errlen);
    if (rc == SN_ELIMIT) rc = SN_EINVAL;
    if (rc != SN_OK) return rc;
    keys_parse p = {.path = path, .err = err, .errlen = errlen};
    rc = each_line(text, len, keys_line, &p);
    wipe(text, len);
    free(text);
    sn_curve_keys *k = NULL;
    if (rc == SN_OK && !p.have_secret) {
        errset(err, errlen, "%s: no secret-key line (is this a .pub file?)", path);
        rc = SN_EINVAL;
    } else if (rc == SN_OK && !p.have_public) {
        errset(err, errlen, "%s: no public-key line", path);
        rc = SN_EINVAL;
    }
    if (rc == SN_OK) {
        k = calloc(1, sizeof *k);
        if (!k) {
            errset(err, errlen, "%s: out of memory", path);
            rc = SN_ENOMEM;
        }
    }
    if (rc == SN_OK) {
        rc = keys_fill(k, p.secret_key);
        if (rc != SN_OK)
            errset(err, errlen, "%s: cannot derive the public key: %s", path, sn_strerror(rc));
        else if (memcmp(k->public_key, p.public_key, SN_CURVE_KEY_LEN) != 0) {
            errset(err, errlen, "%s: public-key does not belong to secret-key", path);
            rc = SN_EINVAL;
        }
    }
    wipe(&p, sizeof p);
    if (rc != SN_OK) {
        sn_curve_keys_destroy(&k);
        return rc;
    }
    *out = k;
    return SN_OK;
}

/* Writes all of buf to a new file (O_EXCL) with exactly mode; SN_EINVAL if it exists. */
static int write_new_file(const char *path, mode_t mode, const char *buf, size_t len, char *err,
                          size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST) {
            errset(err, errlen, "%s exists", path);
            return SN_EINVAL;
        }
        errset(err, errlen, "%s: %s", path, strerror(e));
        return SN_EIO;
    }
    int rc = SN_OK;
    /* open's mode went through the umask; set it exactly, before any byte is written. */
    if (fchmod(fd, mode) != 0) rc = SN_EIO;
    size_t done = 0;
    while (rc == SN_OK && done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            rc = SN_EIO;
        else
            done += (size_t)n;
    }
    if (rc == SN_OK && fsync(fd) != 0) rc = SN_EIO;
    int e = errno;
    if (close(fd) != 0 && rc == SN_OK) {
        e = errno;
        rc = SN_EIO;
    }
    if (rc != SN_OK) {
        errset(err, errlen, "%s: %s", path, strerror(e));
        unlink(path);
    }
    return rc;
}

int sn_curve_keygen(const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        errset(err, errlen, "keygen: no file name");
        return SN_EINVAL;
    }
    if (!zmq_has("curve")) {
        errset(err, errlen, "keygen: this libzmq was built without CURVE");
        return SN_ENOTSUP;
    }
    size_t plen = strlen(path);
    char *pub_path = malloc(plen + 5);
    if (!pub_path) {
        errset(err, errlen, "keygen: out of memory");
        return SN_ENOMEM;
    }
    memcpy(pub_path, path, plen);
    memcpy(pub_path + plen, ".pub", 5);

    int rc = SN_OK;
    struct stat st;
    if (lstat(path, &st) == 0 || errno != ENOENT) {
        errset(err, errlen, "%s exists", path);
        rc = SN_EINVAL;
    } else if (lstat(pub_path, &st) == 0 || errno != ENOENT) {
        errset(err, errlen, "%s exists", pub_path);
        rc = SN_EINVAL;
    }

    char public_z85[SN_CURVE_Z85_LEN + 1], secret_z85[SN_CURVE_Z85_LEN + 1];
    char text[256];
    if (rc == SN_OK && zmq_curve_keypair(public_z85, secret_z85) != 0) {
        errset(err, errlen, "keygen: %s", zmq_strerror(errno));
        rc = SN_ENOTSUP;
    }
    if (rc == SN_OK) {
        int n = snprintf(text, sizeof text,
                         "# stage-node CurveZMQ keypair: keep this file secret (mode 0600)\n"
                         "public-key = %s\nsecret-key = %s\n",
                         public_z85, secret_z85);
        rc = write_new_file(path, 0600, text, (size_t)n, err, errlen);
    }
    if (rc == SN_OK) {
        int n = snprintf(text, sizeof text, "%s\n", public_z85);
        rc = write_new_file(pub_path, 0644, text, (size_t)n, err, errlen);
        if (rc != SN_OK) unlink(path);
    }
    wipe(secret_z85, sizeof secret_z85);
    wipe(text, sizeof text);
    free(pub_path);
    return rc;
}

/* ---- the allow list ---- */

typedef struct allow_parse {
    const char *name;
    errbuf *e;
    int bad;
    int too_many;
    size_t n, cap;
    allow_entry *keys;
} allow_parse;

/* A node name in an allow file: 1..SN_CURVE_NAME_MAX of [A-Za-z0-9._-]. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > SN_CURVE_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static int allow_line(void *ctx, size_t lineno, const char *s, size_t n)
{
    allow_parse *p = ctx;
    if (n == 0 || s[0] == '#') return SN_OK;
    if (n > SN_CURVE_LINE_MAX) {
        errbuf_add(p->e, "%s:%zu: line longer than %d characters", p->name, lineno,
                   SN_CURVE_LINE_MAX);
        p->bad++;
        return SN_OK;
    }
    size_t word = 0;
    while (word < n && !is_space(s[word]))
        word++;
    size_t name = word;
    while (name < n && is_space(s[name]))
        name++;
    size_t name_end = name;
    while (name_end < n && !is_space(s[name_end]) && s[name_end] != '#')
        name_end++;
    size_t rest = name_end;
    while (rest < n && is_space(s[rest]))
        rest++;
    uint8_t key[SN_CURVE_KEY_LEN];
    if (z85_key_decode(s, word, key) != SN_OK) {
        errbuf_add(p->e, "%s:%zu: not a 40-character Z85 public key", p->name, lineno);
        p->bad++;
        return SN_OK;
    }
    if (name == name_end || s[name] == '#') {
        errbuf_add(p->e, "%s:%zu: a key without a node name (write \"KEY NAME\")", p->name,
                   lineno);
        p->bad++;
        return SN_OK;
    }
    if (!name_ok(s + name, name_end - name)) {
        errbuf_add(p->e, "%s:%zu: not a node name (1 to %d of A-Z a-z 0-9 . _ -)", p->name,
                   lineno, SN_CURVE_NAME_MAX);
        p->bad++;
        return SN_OK;
    }
    if (rest < n && s[rest] != '#') {
        errbuf_add(p->e, "%s:%zu: one key and one name per line (a comment starts with #)",
                   p->name, lineno);
        p->bad++;
        return SN_OK;
    }
    if (p->n >= SN_CURVE_ALLOW_MAX) {
        p->too_many = 1;
        return SN_ELIMIT;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        if (cap > SN_CURVE_ALLOW_MAX) cap = SN_CURVE_ALLOW_MAX;
        void *nk = realloc(p->keys, cap * sizeof *p->keys);
        if (!nk) return SN_ENOMEM;
        p->keys = nk;
        p->cap = cap;
    }
    allow_entry *a = &p->keys[p->n++];
    memcpy(a->key, key, SN_CURVE_KEY_LEN);
    memcpy(a->name, s + name, name_end - name);
    a->name[name_end - name] = 0;
    a->line = lineno;
    return SN_OK;
}

static int key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SN_CURVE_KEY_LEN); /* the key is an entry's first member */
}

/* Sorts keys[0..n) into a new allow list; takes keys. A key listed twice for one name is
 * kept once; for two names it is an error (e names both lines). */
static int allow_make(allow_entry *keys, size_t n, const char *file, errbuf *e,
                      sn_curve_allow **out)
{
    qsort(keys, n, sizeof *keys, key_cmp);
    size_t w = 0;
    int bad = 0;
    for (size_t r = 0; r < n; r++) {
        if (w && memcmp(keys[w - 1].key, keys[r].key, SN_CURVE_KEY_LEN) == 0) {
            if (strcmp(keys[w - 1].name, keys[r].name) != 0) {
                if (e)
                    errbuf_add(e, "%s:%zu: key already listed for node %s (line %zu)", file,
                               keys[r].line, keys[w - 1].name, keys[w - 1].line);
                bad = 1;
            }
            continue;
        }
        if (w != r) keys[w] = keys[r];
        w++;
    }
    if (bad) {
        free(keys);
        return SN_EINVAL;
    }
    sn_curve_allow *a = calloc(1, sizeof *a);
    if (!a) {
        free(keys);
        return SN_ENOMEM;
    }
    a->keys = keys;
    a->n = w;
    *out = a;
    return SN_OK;
}

int sn_curve_allow_parse(const char *text, size_t len, const char *name, sn_curve_allow **out,
                         char *err, size_t errlen)
{
    errbuf e;
    errbuf_init(&e, err, errlen);
    allow_parse p = {.name = name ? name : "allow list", .e = &e};
    int rc = each_line(text, len, allow_line, &p);
    if (rc == SN_ELIMIT && p.too_many) {
        errbuf_init(&e, err, errlen);
        errbuf_add(&e, "%s: more than %d keys", p.name, SN_CURVE_ALLOW_MAX);
    } else if (rc == SN_ENOMEM) {
        errbuf_init(&e, err, errlen);
        errbuf_add(&e, "%s: out of memory", p.name);
    } else if (p.bad) {
        rc = SN_EINVAL;
    } else if (p.n == 0) {
        errbuf_add(&e, "%s: no keys (nobody could connect)", p.name);
        rc = SN_EINVAL;
    }
    if (rc != SN_OK) {
        free(p.keys);
        return rc;
    }
    rc = allow_make(p.keys, p.n, p.name, &e, out);
    if (rc == SN_ENOMEM) errbuf_add(&e, "%s: out of memory", p.name);
    return rc;
}

int sn_curve_allow_load(const char *path, sn_curve_allow **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, ALLOW_FILE_MAX, &text, &len, err, errlen);
    if (rc != SN_OK) return rc;
    rc = sn_curve_allow_parse(text, len, path, out, err, errlen);
    free(text);
    return rc;
}

int sn_curve_allow_of_keys(const sn_curve_keys *k, const char *name, sn_curve_allow **out)
{
    if (!name || !name_ok(name, strlen(name))) return SN_EINVAL;
    allow_entry *keys = calloc(1, sizeof *keys);
    if (!keys) return SN_ENOMEM;
    memcpy(keys[0].key, k->public_key, SN_CURVE_KEY_LEN);
    snprintf(keys[0].name, sizeof keys[0].name, "%s", name);
    return allow_make(keys, 1, "", NULL, out);
}

void sn_curve_allow_destroy(sn_curve_allow **ap)
{
    if (!ap || !*ap) return;
    free((*ap)->keys);
    free(*ap);
    *ap = NULL;
}

size_t sn_curve_allow_count(const sn_curve_allow *a)
{
    return a->n;
}

const char *sn_curve_allow_name(const sn_curve_allow *a, const uint8_t key[SN_CURVE_KEY_LEN])
{
    if (!a->n) return NULL;
    const allow_entry *e = bsearch(key, a->keys, a->n, sizeof *a->keys, key_cmp);
    return e ? e->name : NULL;
}

int sn_curve_allow_has(const sn_curve_allow *a, const uint8_t key[SN_CURVE_KEY_LEN])
{
    return sn_curve_allow_name(a, key) != NULL;
}

int sn_curve_allow_has_z85(const sn_curve_allow *a, const char *z85)
{
    uint8_t key[SN_CURVE_KEY_LEN];
    if (!z85 || z85_key_decode(z85, strlen(z85), key) != SN_OK) return 0;
    return sn_curve_allow_has(a, key);
}

int sn_curve_allow_key_of(const sn_curve_allow *a, const char *name,
                          uint8_t key[SN_CURVE_KEY_LEN])
{
    const allow_entry *found = NULL;
    for (size_t i = 0; name && i < a->n; i++) /* the latest line wins (a rotation adds one) */
        if (strcmp(a->keys[i].name, name) == 0 && (!found || a->keys[i].line > found->line))
            found = &a->keys[i];
    if (!found) return SN_ENOENT;
    memcpy(key, found->key, SN_CURVE_KEY_LEN);
    return SN_OK;
}

/* ---- socket options ---- */

static int setopt(void *zsock, int opt, const void *v, size_t n)
{
    if (zmq_setsockopt(zsock, opt, v, n) == 0) return SN_OK;
    return errno == EINVAL || errno == ENOTSUP ? SN_ENOTSUP : SN_EIO;
}

int sn_curve_server(void *zsock, const sn_curve_keys *k)
{
    if (!zmq_has("curve")) return SN_ENOTSUP;
    int one = 1;
    int rc = setopt(zsock, ZMQ_CURVE_SERVER, &one, sizeof one);
    if (rc == SN_OK) rc = setopt(zsock, ZMQ_CURVE_SECRETKEY, k->secret_key, SN_CURVE_KEY_LEN);
    if (rc == SN_OK)
        rc = setopt(zsock, ZMQ_ZAP_DOMAIN, SN_CURVE_ZAP_DOMAIN, strlen(SN_CURVE_ZAP_DOMAIN));
    /* Without enforcement libzmq 4.3 admits every CURVE client when no handler is bound
     * (the "Stonehouse" legacy); with it, no handler means no connection. */
    if (rc == SN_OK) rc = setopt(zsock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one);
    if (rc == SN_OK) {
        int v = 0;
        size_t vl = sizeof v;
        if (zmq_getsockopt(zsock, ZMQ_ZAP_ENFORCE_DOMAIN, &v, &vl) != 0 || v != 1) rc = SN_ENOTSUP;
    }
    return rc;
}

int sn_curve_client(void *zsock, const sn_curve_keys *k, const uint8_t server[SN_CURVE_KEY_LEN])
{
    if (!zmq_has("curve")) return SN_ENOTSUP;
    int rc = setopt(zsock, ZMQ_CURVE_SERVERKEY, server, SN_CURVE_KEY_LEN);
    if (rc == SN_OK) rc = setopt(zsock, ZMQ_CURVE_PUBLICKEY, k->public_key, SN_CURVE_KEY_LEN);
    if (rc == SN_OK) rc = setopt(zsock, ZMQ_CURVE_SECRETKEY, k->secret_key, SN_CURVE_KEY_LEN);
    return rc;
}

/* ---- the trust rules ---- */

int sn_curve_address_is_loopback(const char *host)
{
    if (!host || !*host) return 0;
    char buf[INET6_ADDRSTRLEN + 8];
    size_t n = strlen(host);
    if (host[0] == '[') {
        if (n < 3 || host[n - 1] != ']') return 0;
        host++;
        n -= 2;
    }
    if (n >= sizeof buf) return 0;
    memcpy(buf, host, n);
    buf[n] = '\0';
    if (strcasecmp(buf, "localhost") == 0) return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) return ((const uint8_t *)&a4.s_addr)[0] == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
    }
    return 0;
}

int sn_curve_endpoint_is_loopback(const char *endpoint)
{
    if (!endpoint) return 0;
    if (strncmp(endpoint, "ipc://", 6) == 0) return endpoint[6] != '\0';
    if (strncmp(endpoint, "inproc://", 9) == 0) return endpoint[9] != '\0';
    if (strncmp(endpoint, "tcp://", 6) != 0) return 0;
    const char *rest = endpoint + 6;
    /* A connect endpoint may name a source first: "tcp://SRC;HOST:PORT". */
    const char *semi = strchr(rest, ';');
    if (semi) rest = semi + 1;
    const char *colon;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        if (!close || close[1] != ':') return 0;
        colon = close + 1;
    } else {
        colon = strrchr(rest, ':');
    }
    if (!colon || colon == rest || colon[1] == '\0') return 0;
    char host[INET6_ADDRSTRLEN + 8];
    size_t n = (size_t)(colon - rest);
    if (n >= sizeof host) return 0;
    memcpy(host, rest, n);
    host[n] = '\0';
    return sn_curve_address_is_loopback(host);
}

int sn_curve_listen_check(const char *endpoint, int curve_on, int insecure, char *err,
                          size_t errlen)
{
    /* Loopback and ipc are no exception: any local user reaches them, and without a key
     * nothing tells a member from someone who claims its name. */
    if (curve_on || insecure) return SN_OK;
    errset(err, errlen,
           "refusing cluster traffic on %s without CurveZMQ: give --curve-secret and "
           "--curve-allow (scripts/cluster-keys.sh makes them), or --insecure for an "
           "unauthenticated development cluster (docs/security.md)",
           endpoint ? endpoint : "(null)");
    return SN_EINVAL;
}

int sn_curve_trust_bytecode(const char *peer)
{
    /* Not loopback, not --insecure: any local user reaches loopback and ipc, and anyone who
     * reaches an --insecure port; only a name ZAP admitted says who sent a frame. */
    return peer && *peer ? SN_OK : SN_EUNTRUSTED;
}
