/* sn_small: a thread's cache of freed small blocks (see sn_small.h). */
#include "sn_small.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Class k (1..) holds blocks of 16k + 8 bytes: glibc's chunks are 16k + 16 bytes with 8 of
 * them its header, so a block costs what malloc of the size asked would have cost. */
enum { STEP = 16, CLASSES = (SN_SMALL_MAX + 7) / STEP + 1 };

typedef struct cache {
    void *head[CLASSES]; /* each free block's first word links to the next */
    size_t bytes;        /* held in all classes */
} cache;

static _Thread_local cache *tc;
static atomic_size_t live; /* caches not yet released, all threads */
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

/* Frees a cache's blocks and the cache: the key's destructor (the thread ends; a free after
 * it makes a new cache, which the key's next round frees) or at exit. */
static void tc_release(void *v)
{
    cache *c = v;
    if (tc == c)
        tc = NULL;
    for (int k = 1; k < CLASSES; k++) {
        while (c->head[k]) {
            void *p = c->head[k];
            UNPOISON(p, sizeof(void *));
            c->head[k] = *(void **)p;
            free(p);
        }
    }
    free(c);
    atomic_fetch_sub(&live, 1);
}

static _Atomic int exiting; /* the process is ending: no more caching */

/* At exit, the exiting thread's cache (the others' end with their threads; the main thread's
 * key destructor never runs). */
static void tc_at_exit(void)
{
    exiting = 1;
    cache *c = tc;
    if (c) {
        (void)pthread_setspecific(tc_key, NULL);
        tc_release(c);
    }
}

static void tc_key_make(void)
{
    (void)pthread_key_create(&tc_key, tc_release);
    (void)atexit(tc_at_exit);
}

/* The calling thread's cache, made on first use; NULL when that fails or the process is
 * ending (no caching then). */
static cache *tc_get(void)
{
    if (tc)
        return tc;
    pthread_once(&tc_once, tc_key_make);
    if (exiting)
        return NULL;
    cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (pthread_setspecific(tc_key, c)) {
        free(c);
        return NULL;
    }
    tc = c;
    atomic_fetch_add(&live, 1);
    return c;
}

/* n's class: 1 (0..24 bytes) to CLASSES - 1 */
static size_t class_of(size_t n) { return n <= 24 ? 1 : (n + 7) / STEP; }
static size_t class_size(size_t k) { return k * STEP + 8; }

void *sn_small_alloc(size_t n)
{
    if (n > SN_SMALL_MAX)
        return malloc(n);
    size_t k = class_of(n);
    cache *c = tc;
    if (c && c->head[k]) {
        void *p = c->head[k];
        UNPOISON(p, class_size(k));
        c->head[k] = *(void **)p;
        c->bytes -= class_size(k);
        return p;
    }
    return malloc(class_size(k));
}

void sn_small_free(void *p, size_t n)
{
    if (!p)
        return;
    if (n > SN_SMALL_MAX) {
        free(p);
        return;
    }
    size_t k = class_of(n);
    cache *c = tc_get();
    if (!c || c->bytes + class_size(k) > SN_SMALL_CACHE) {
        free(p);
        return;
    }
    *(void **)p = c->head[k];
    POISON(p, class_size(k));
    c->head[k] = p;
    c->bytes += class_size(k);
}

void *sn_small_realloc(void *p, size_t o, size_t n)
{
    if (!p)
        return sn_small_alloc(n);
    if (o > SN_SMALL_MAX && n > SN_SMALL_MAX)
        return realloc(p, n);
    if (o <= SN_SMALL_MAX && n <= SN_SMALL_MAX && class_of(o) == class_of(n))
        return p; /* the block already has its class's size */
    void *q = sn_small_alloc(n);
    if (!q) /* Lua counts on a smaller size never failing: the block is big enough */
        return n <= o ? p : NULL;
    memcpy(q, p, o < n ? o : n);
    sn_small_free(p, o);
    return q;
}

size_t sn_small_cached(void)
{
    return tc ? tc->bytes : 0;
}

size_t sn_small_caches(void)
{
    return atomic_load(&live);
}
