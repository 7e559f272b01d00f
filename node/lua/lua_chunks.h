/* lua_chunks: a per-process cache of compiled Lua: files (preload files, spawned scripts) and
 * the Lua sources of the bindings. Each is compiled once and every later state loads its
 * bytecode; a file only while it is unchanged (same size, mtime and inode) and was not
 * written in the last seconds. */
#ifndef SN_LUA_CHUNKS_H
#define SN_LUA_CHUNKS_H

#include <lua.h>
#include <stddef.h>

typedef struct sn_lua_chunks sn_lua_chunks;

enum { SN_LUA_CHUNKS_MAX = 256,                /* files kept; past it, files load as text */
       SN_LUA_CHUNK_BYTES = 4 * 1024 * 1024,     /* bytecode per file kept, at most */
       SN_LUA_CHUNKS_BYTES = 64 * 1024 * 1024 }; /* bytecode kept in all, at most */

/* sn_lua_chunks_new: an empty cache holding at most files files, file_bytes of bytecode per
 * file and total_bytes in all (each 0: its SN_LUA_CHUNK* default; the node's options
 * chunk_files, chunk_file_kb and chunk_cache_mb), or NULL on out of memory. Caller owns; any
 * thread may use it. */
sn_lua_chunks *sn_lua_chunks_new(int files, size_t file_bytes, size_t total_bytes);
/* sn_lua_chunks_destroy: frees *c (NULL is fine) and sets *c to NULL. */
void sn_lua_chunks_destroy(sn_lua_chunks **c);

/* sn_lua_chunks_load: as sn_lua_guard_loadfile(L, path) (text only, the same errors, the
 * same chunk name and line numbers): pushes the chunk or the error message and returns
 * lua_load's status. With c NULL, or a file past the limits, it compiles the text each
 * time. Any thread; the cache is locked only around the lookup and the load. */
int sn_lua_chunks_load(sn_lua_chunks *c, lua_State *L, const char *path);

/* sn_lua_chunks_loadbuffer: luaL_loadbufferx(L, src, len, name, "t") for a source text
 * that lives as long as the program (a static array: its address is the key), compiled
 * once per process when the state's host has a cache (host->ctx->chunks). */
int sn_lua_chunks_loadbuffer(lua_State *L, const char *src, size_t len, const char *name);

#endif
