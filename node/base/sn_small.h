/* sn_small: a thread's cache of freed small blocks, for an allocator that is told each
 * block's size when it frees it (Lua's lua_Alloc is).
 *
 * A Lua state makes and drops small objects at a high rate: a broker echo allocates a string
 * per frame and its collector frees them in bursts, more than glibc's per-thread cache holds,
 * so malloc and free took a sixth of the worker's time. Blocks up to SN_SMALL_MAX bytes are
 * rounded up to a class (16-byte steps, sized as glibc's chunks are, so rounding costs no
 * memory) and, when freed, kept on the calling thread's list for that class, up to
 * SN_SMALL_CACHE bytes in all per thread; the rest go back to free(). A block is a plain
 * malloc block, so any thread may later take or free it, and a thread's cache is freed when
 * the thread ends. Under AddressSanitizer a cached block is poisoned: a use after free is
 * still reported. */
#ifndef SN_SMALL_H
#define SN_SMALL_H

#include <stddef.h>

enum {
    SN_SMALL_MAX = 256,          /* larger blocks: straight to malloc/realloc/free */
    SN_SMALL_CACHE = 256 * 1024, /* bytes of freed blocks one thread keeps at most */
};

/* sn_small_alloc: n (> 0) bytes, or NULL. */
void *sn_small_alloc(size_t n);
/* sn_small_free: p (may be NULL), which was allocated here with size n. */
void sn_small_free(void *p, size_t n);
/* sn_small_realloc: p (size o, allocated here; NULL: a new block) resized to n (> 0) bytes,
 * its contents kept up to the smaller size; NULL when out of memory (p is left as it was),
 * never when n <= o (Lua counts on that: p itself, then, if a new block cannot be had). */
void *sn_small_realloc(void *p, size_t o, size_t n);
/* sn_small_cached: the bytes the calling thread holds in its cache now (for tests).
 * sn_small_caches: the threads' caches not yet freed, in the process (for tests). */
size_t sn_small_cached(void);
size_t sn_small_caches(void);

#endif
