/* lua_chunks: compiled Lua files kept as bytecode, so that a file every actor runs (the
 * preload, a spawned script) is lexed and compiled once per process, not once per state.
 * The bytecode is our own dump of a text chunk (lua_dump without stripping: the chunk name
 * and line numbers stay), so loading it keeps the guard's rule (scripts load text only). */
#include "lua_chunks.h"
#include "lua_guard.h"
#include "lua_host.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { SETTLED_S = 2 }; /* a file this many seconds old is kept */

typedef struct chunk {
    const char *src; /* a source text in the program (its address is the key), or NULL */
    char *path;      /* else the file's path */
    struct stat st; /* the file as it was compiled: size, mtime, inode, device */
    char *code;
    size_t len;
} chunk;

struct sn_lua_chunks {
    pthread_mutex_t lock;
    int n, max, full_logged, big_logged;
    size_t bytes;                 /* bytecode kept in all */
    size_t file_bytes, max_bytes; /* the limits: per file, in all */
    chunk *v;
};

sn_lua_chunks *sn_lua_chunks_new(int files, size_t file_bytes, size_t total_bytes)
{
    sn_lua_chunks *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max = files > 0 ? files : SN_LUA_CHUNKS_MAX;
    c->file_bytes = file_bytes ? file_bytes : SN_LUA_CHUNK_BYTES;
    c->max_bytes = total_bytes ? total_bytes : SN_LUA_CHUNKS_BYTES;
    c->v = calloc((size_t)c->max, sizeof *c->v);
    if (!c->v) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void sn_lua_chunks_destroy(sn_lua_chunks **pc)
{
    sn_lua_chunks *c = pc ? *pc : NULL;
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        free(c->v[i].path);
        free(c->v[i].code);
    }
    free(c->v);
    pthread_mutex_destroy(&c->lock);
    free(c);
    *pc = NULL;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

typedef struct dump {
    char *code;
    size_t len, cap, max;
    int failed, too_big;
} dump;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    dump *d = ud;
    if (d->failed || d->len + sz > d->max) {
        d->too_big = !d->failed;
        d->failed = 1;
        return 1;
    }
    if (d->len + sz > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + sz)
            cap *= 2;
        char *code = realloc(d->code, cap);
        if (!code) {
            d->failed = 1;
            return 1;
        }
        d->code = code;
        d->cap = cap;
    }
    memcpy(d->code + d->len, p, sz);
    d->len += sz;
    return 0;
}

typedef struct reader {
    const char *code;
    size_t len;
} reader;

static const char *read_code(lua_State *L, void *ud, size_t *sz)
{
    (void)L;
    reader *r = ud;
    *sz = r->len;
    r->len = 0;
    return *sz ? r->code : NULL;
}

static chunk *find(sn_lua_chunks *c, const char *src, const char *path)
{
    for (int i = 0; i < c->n; i++)
        if (src ? c->v[i].src == src
                : path && c->v[i].path && strcmp(c->v[i].path, path) == 0)
            return &c->v[i];
    return NULL;
}

/* Keeps the function on top of L as path's bytecode (the file was st before and after it
 * was compiled). Out of memory or a full cache only means the next state compiles again. */
static void keep(sn_lua_chunks *c, lua_State *L, const char *src, const char *path,
                 const struct stat *st)
{
    dump d = {.max = c->file_bytes};
    if (lua_dump(L, dump_writer, &d, 0) != 0 || d.failed) {
        free(d.code);
        pthread_mutex_lock(&c->lock);
        int say = d.too_big && !c->big_logged;
        c->big_logged |= say;
        pthread_mutex_unlock(&c->lock);
        if (say) {
            sn_lua_host *host = sn_lua_host_of(L);
            sn_log_write(host->log, SN_LOG_WARN, host->who, "compiled-Lua cache: '%s' has more "
                         "than %zu KiB of bytecode (chunk_file_kb): it is compiled in every "
                         "state", path, c->file_bytes >> 10);
        }
        return;
    }
    pthread_mutex_lock(&c->lock);
    chunk *e = find(c, src, path);
    size_t kept = e ? e->len : 0;
    int room = c->bytes - kept + d.len <= c->max_bytes;
    if (!room) {
        e = NULL; /* an entry already kept stays as it is: its stat no longer matches */
    } else if (!e && c->n < c->max) {
        char *p = src ? NULL : strdup(path);
        if (src || p) {
            e = &c->v[c->n++];
            *e = (chunk){.src = src, .path = p};
        }
    }
    if (!e && !c->full_logged) {
        c->full_logged = 1;
        sn_lua_host *host = sn_lua_host_of(L);
        sn_log_write(host->log, SN_LOG_WARN, host->who, "compiled-Lua cache full (%d files or "
                     "%zu MiB: chunk_files, chunk_cache_mb): '%s' and others are compiled in "
                     "every state", c->max, c->max_bytes >> 20, path);
    }
    if (e) {
        c->bytes = c->bytes - kept + d.len;
        free(e->code);
        e->code = d.code;
        e->len = d.len;
        if (st)
            e->st = *st;
        d.code = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(d.code);
}

int sn_lua_chunks_load(sn_lua_chunks *c, lua_State *L, const char *path)
{
    struct stat before, after;
    if (!c || stat(path, &before) != 0 || !S_ISREG(before.st_mode))
        return sn_lua_guard_loadfile(L, path); /* its errors, as before */
    pthread_mutex_lock(&c->lock);
    chunk *e = find(c, NULL, path);
    if (e && e->code && same_file(&e->st, &before)) {
        reader r = {e->code, e->len};
        int status = lua_load(L, read_code, &r, path, "b"); /* the name is in the dump */
        pthread_mutex_unlock(&c->lock);
        return status;
    }
    pthread_mutex_unlock(&c->lock);
    int status = sn_lua_guard_loadfile(L, path);
    /* A file written in the last seconds may be written again within the same clock tick
     * of the file system (a few ms), keeping its size: it is not kept until it settles
     * (as git's "racily clean" entries). */
    if (status == LUA_OK && stat(path, &after) == 0 && same_file(&before, &after) &&
        after.st_mtim.tv_sec + SETTLED_S <= time(NULL))
        keep(c, L, NULL, path, &after);
    return status;
}

int sn_lua_chunks_loadbuffer(lua_State *L, const char *src, size_t len, const char *name)
{
    sn_lua_host *host = sn_lua_host_of(L);
    sn_lua_chunks *c = host && host->ctx ? host->ctx->chunks : NULL;
    if (c) {
        pthread_mutex_lock(&c->lock);
        chunk *e = find(c, src, NULL);
        if (e && e->code) {
            reader r = {e->code, e->len};
            int status = lua_load(L, read_code, &r, name, "b");
            pthread_mutex_unlock(&c->lock);
            return status;
        }
        pthread_mutex_unlock(&c->lock);
    }
    int status = luaL_loadbufferx(L, src, len, name, "t");
    if (c && status == LUA_OK)
        keep(c, L, src, name, NULL);
    return status;
}
