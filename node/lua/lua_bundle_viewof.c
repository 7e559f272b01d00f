/* lua_bundle_viewof: bundle.viewof(format [, start, rows] [, f]): rows of packed C records in
 * a file, read and written as Lua values (docs/lua-api.md). A view of a file holds a copy
 * of its bytes, allocated by the state (so it counts toward the actor's memory cap): commit
 * writes it back, rollback reads it again. Not mmap: a mapped file that anyone cuts short
 * turns the next access into SIGBUS, which would stop the whole node. A view may also be
 * a window on another view ({view, ...}); it keeps that view alive. */
#include "lua_bundle.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VIEW_MT "bundle.viewof"
#define ROW_MT  "bundle.viewof.row"

enum ftype { F_C, F_S, F_I8, F_U8, F_I16, F_U16, F_I32, F_U32, F_I64, F_U64, F_F32, F_F64 };
static const char type_letters[] = "csbBhHiIlLfd";
static const unsigned type_size[] = {1, 1, 1, 1, 2, 2, 4, 4, 8, 8, 4, 8};
static const char *const type_names[] = {"char[]", "string", "int8",  "uint8",  "int16", "uint16",
                                         "int32",  "uint32", "int64", "uint64", "float", "double"};

typedef struct field {
    enum ftype type;
    unsigned count; /* elements (bytes for c and s) */
    size_t offset;
} field;

typedef struct view {
    char *copy; /* the bytes of a view of a file (the state's allocator); NULL on a view of a view */
    size_t len;
    off_t at;   /* where they are in the file */
    int fd;     /* the file, or -1 on a view of a view */
    char *data; /* row 1 */
    lua_Integer rows;
    size_t row_size;
    int table_rows; /* the record was described by a table: a row is a row object */
    int nfields, cap;
    field *fields; /* malloc'd, freed by __gc */
    sn_bundle_limits lim;
} view;

typedef struct row {
    view *v;
    char *p;
} row;

static view *check_view(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, VIEW_MT);
}

/* The root of a view (a view of a file), reached through the user values. */
static view *root_of(lua_State *L, int idx)
{
    view *v = check_view(L, idx);
    lua_pushvalue(L, idx);
    while (v->fd < 0) {
        lua_getuservalue(L, -1);
        lua_remove(L, -2);
        v = lua_touserdata(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* ---- one field -------------------------------------------------------------------------- */

static void push_element(lua_State *L, enum ftype t, const char *p)
{
    union {
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        uint16_t u16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
        float f32;
        double f64;
    } u;
    memcpy(&u, p, type_size[t]);
    switch (t) {
    case F_I8:
        lua_pushinteger(L, u.i8);
        break;
    case F_U8:
        lua_pushinteger(L, u.u8);
        break;
    case F_I16:
        lua_pushinteger(L, u.i16);
        break;
    case F_U16:
        lua_pushinteger(L, u.u16);
        break;
    case F_I32:
        lua_pushinteger(L, u.i32);
        break;
    case F_U32:
        lua_pushinteger(L, u.u32);
        break;
    case F_I64:
        lua_pushinteger(L, u.i64);
        break;
    case F_U64:
        lua_pushinteger(L, (lua_Integer)u.u64);
        break;
    case F_F32:
        lua_pushnumber(L, u.f32);
        break;
    case F_F64:
        lua_pushnumber(L, u.f64);
        break;
    default:
        lua_pushnil(L);
    }
}

static void store_element(lua_State *L, int idx, enum ftype t, char *p, int fieldno)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "bundle.viewof: field %d (%s) takes a number, not a %s", fieldno,
                   type_names[t], luaL_typename(L, idx));
    lua_Number d = lua_tonumber(L, idx);
    lua_Integer i = lua_isinteger(L, idx) ? lua_tointeger(L, idx) : (lua_Integer)d;
    union {
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        uint16_t u16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
        float f32;
        double f64;
    } u;
    switch (t) {
    case F_I8:
        u.i8 = (int8_t)i;
        break;
    case F_U8:
        u.u8 = (uint8_t)i;
        break;
    case F_I16:
        u.i16 = (int16_t)i;
        break;
    case F_U16:
        u.u16 = (uint16_t)i;
        break;
    case F_I32:
        u.i32 = (int32_t)i;
        break;
    case F_U32:
        u.u32 = (uint32_t)i;
        break;
    case F_I64:
        u.i64 = (int64_t)i;
        break;
    case F_U64:
        u.u64 = (uint64_t)i;
        break;
    case F_F32:
        u.f32 = (float)d;
        break;
    case F_F64:
        u.f64 = d;
        break;
    default:
        return;
    }
    memcpy(p, &u, type_size[t]);
}

static void push_field(lua_State *L, const field *f, const char *rowp)
{
    const char *p = rowp + f->offset;
    if (f->type == F_C) {
        lua_pushlstring(L, p, f->count);
    } else if (f->type == F_S) {
        lua_pushlstring(L, p, strnlen(p, f->count));
    } else if (f->count == 1) {
        push_element(L, f->type, p);
    } else {
        lua_createtable(L, (int)f->count, 0);
        for (unsigned i = 0; i < f->count; i++) {
            push_element(L, f->type, p + i * type_size[f->type]);
            lua_rawseti(L, -2, i + 1);
        }
    }
}

static void store_field(lua_State *L, int idx, const field *f, char *rowp, int fieldno)
{
    char *p = rowp + f->offset;
    if (f->type == F_C || f->type == F_S) {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (!s)
            luaL_error(L, "bundle.viewof: field %d (%s[%d]) takes a string, not a %s", fieldno,
                       type_names[f->type], (int)f->count, luaL_typename(L, idx));
        size_t room = f->type == F_S ? f->count - 1 : f->count; /* s keeps its '\0' */
        if (n > room) n = room;
        memcpy(p, s, n);
        memset(p + n, 0, f->count - n);
    } else if (f->count == 1) {
        store_element(L, idx, f->type, p, fieldno);
    } else {
        luaL_checktype(L, idx, LUA_TTABLE);
        for (unsigned i = 0; i < f->count; i++) {
            if (lua_rawgeti(L, idx, i + 1) != LUA_TNIL)
                store_element(L, -1, f->type, p + i * type_size[f->type], fieldno);
            lua_pop(L, 1);
        }
    }
}

/* ---- rows ------------------------------------------------------------------------------- */

static char *row_ptr(view *v, lua_Integer i)
{
    return i >= 1 && i <= v->rows ? v->data + (size_t)(i - 1) * v->row_size : NULL;
}

static int field_index(lua_State *L, view *v, int idx)
{
    lua_Integer j = luaL_checkinteger(L, idx);
    if (j < 1 || j > v->nfields) return 0;
    return (int)j;
}

static int row_index(lua_State *L)
{
    row *r = luaL_checkudata(L, 1, ROW_MT);
    int j = lua_type(L, 2) == LUA_TNUMBER ? field_index(L, r->v, 2) : 0;
    if (!j) return 0;
    push_field(L, &r->v->fields[j - 1], r->p);
    return 1;
}

static int row_newindex(lua_State *L)
{
    row *r = luaL_checkudata(L, 1, ROW_MT);
    int j = field_index(L, r->v, 2);
    if (!j)
        return luaL_error(L, "bundle.viewof: field %d is outside 1..%d",
                          (int)luaL_checkinteger(L, 2), r->v->nfields);
    store_field(L, 3, &r->v->fields[j - 1], r->p, j);
    return 0;
}

static int row_len(lua_State *L)
{
    row *r = luaL_checkudata(L, 1, ROW_MT);
    lua_pushinteger(L, r->v->nfields);
    return 1;
}

static int row_next(lua_State *L)
{
    row *r = luaL_checkudata(L, 1, ROW_MT);
    lua_Integer j = lua_isnil(L, 2) ? 1 : luaL_checkinteger(L, 2) + 1;
    if (j < 1 || j > r->v->nfields) return 0;
    lua_pushinteger(L, j);
    push_field(L, &r->v->fields[j - 1], r->p);
    return 2;
}

static int row_tostring(lua_State *L) /* as STAGE's: the view's without its count */
{
    row *r = luaL_checkudata(L, 1, ROW_MT);
    lua_pushfstring(L, "viewof: %p [%d size]", (void *)r->p, (int)r->v->row_size);
    return 1;
}

static int row_pairs(lua_State *L)
{
    lua_pushcfunction(L, row_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Pushes row i of the view at idx: a row object, or its first field's value. */
static int push_row(lua_State *L, int idx, lua_Integer i)
{
    view *v = check_view(L, idx);
    char *p = row_ptr(v, i);
    if (!p) return 0;
    if (!v->table_rows) {
        push_field(L, &v->fields[0], p);
        return 1;
    }
    row *r = lua_newuserdata(L, sizeof *r);
    r->v = v;
    r->p = p;
    static const luaL_Reg fns[] = {
        {"__index", row_index}, {"__newindex", row_newindex},
        {"__len", row_len},     {"__pairs", row_pairs},
        {"__tostring", row_tostring}, {NULL, NULL},
    };
    sn_bundle_metatable(L, ROW_MT, fns);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, idx);
    lua_setuservalue(L, -2); /* the row keeps its view alive */
    return 1;
}

/* ---- the view's methods ----------------------------------------------------------------- */

/* The copy of root's bytes from the file; a file now shorter reads as zeros past its end. */
static int read_copy(view *root, char *err, size_t errlen)
{
    size_t got = 0;
    while (got < root->len) {
        ssize_t n = pread(root->fd, root->copy + got, root->len - got, root->at + (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            return -1;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    memset(root->copy + got, 0, root->len - got);
    return 0;
}

static int write_copy(view *root, int sync, char *err, size_t errlen)
{
    for (size_t put = 0; put < root->len;) {
        ssize_t n = pwrite(root->fd, root->copy + put, root->len - put, root->at + (off_t)put);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s", n < 0 ? strerror(errno) : "nothing written");
            return -1;
        }
        put += (size_t)n;
    }
    if (sync && fdatasync(root->fd) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    return 0;
}

static int v_commit(lua_State *L)
{
    static const char *const modes[] = {"async", "sync", NULL};
    view *root = root_of(L, lua_upvalueindex(1));
    int sync = luaL_checkoption(L, 1, "async", modes);
    char err[128];
    if (root->copy && write_copy(root, sync, err, sizeof err) != 0)
        return luaL_error(L, "bundle.viewof: commit: %s", err);
    return 0;
}

static int v_rollback(lua_State *L)
{
    view *root = root_of(L, lua_upvalueindex(1));
    char err[128];
    if (root->copy && read_copy(root, err, sizeof err) != 0)
        return luaL_error(L, "bundle.viewof: rollback: %s", err);
    return 0;
}

/* scope(["rw"|"ro",] f): f runs holding a lock on the whole file (fcntl, shared with
 * other processes), which is released whether f fails or not. */
static int v_scope(lua_State *L)
{
    static const char *const modes[] = {"rw", "ro", NULL};
    view *root = root_of(L, lua_upvalueindex(1));
    int ro = lua_type(L, 1) == LUA_TSTRING ? luaL_checkoption(L, 1, "rw", modes) : 0;
    if (lua_type(L, 1) == LUA_TSTRING) lua_remove(L, 1);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    struct flock fl = {.l_type = ro ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
    while (fcntl(root->fd, F_SETLKW, &fl) != 0)
        if (errno != EINTR) return luaL_error(L, "bundle.viewof: scope: %s", strerror(errno));
    /* under the lock the copy is the file's: read before fn, and written after a "rw" fn
     * that succeeded */
    char err[128];
    int base = lua_gettop(L) - 1, status = LUA_OK;
    if (root->copy && read_copy(root, err, sizeof err) != 0) {
        lua_pushfstring(L, "bundle.viewof: scope: %s", err);
        status = LUA_ERRRUN;
    } else {
        status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
        if (status == LUA_OK && !ro && root->copy && write_copy(root, 0, err, sizeof err) != 0) {
            lua_pushfstring(L, "bundle.viewof: scope: %s", err);
            status = LUA_ERRRUN;
        }
    }
    fl.l_type = F_UNLCK;
    fcntl(root->fd, F_SETLK, &fl);
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L) - base;
}

static int v_index(lua_State *L)
{
    view *v = check_view(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) return push_row(L, 1, lua_tointeger(L, 2));
    const char *k = luaL_checkstring(L, 2);
    lua_CFunction method = strcmp(k, "commit") == 0     ? v_commit
                           : strcmp(k, "rollback") == 0 ? v_rollback
                           : strcmp(k, "scope") == 0    ? v_scope
                                                        : NULL;
    if (method) {
        lua_pushvalue(L, 1);
        lua_pushcclosure(L, method, 1);
    } else if (strcmp(k, "row_size") == 0 || strcmp(k, "size") == 0) {
        lua_pushinteger(L, (lua_Integer)v->row_size);
    } else if (strcmp(k, "rows") == 0 || strcmp(k, "count") == 0) {
        lua_pushinteger(L, v->rows);
    } else {
        return 0;
    }
    return 1;
}

static int v_newindex(lua_State *L)
{
    view *v = check_view(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    char *p = row_ptr(v, i);
    if (!p) return luaL_error(L, "bundle.viewof: row %I is outside 1..%I", i, v->rows);
    if (v->table_rows && lua_type(L, 3) == LUA_TTABLE) {
        for (int j = 1; j <= v->nfields; j++) {
            if (lua_rawgeti(L, 3, j) != LUA_TNIL)
                store_field(L, lua_gettop(L), &v->fields[j - 1], p, j);
            lua_pop(L, 1);
        }
    } else {
        store_field(L, 3, &v->fields[0], p, 1);
    }
    return 0;
}

static int v_len(lua_State *L)
{
    lua_pushinteger(L, check_view(L, 1)->rows);
    return 1;
}

static int v_next(lua_State *L)
{
    lua_Integer i = lua_isnil(L, 2) ? 1 : luaL_checkinteger(L, 2) + 1;
    lua_pushinteger(L, i);
    if (!push_row(L, 1, i)) return 0;
    return 2;
}

static int v_pairs(lua_State *L)
{
    check_view(L, 1);
    lua_pushcfunction(L, v_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int v_tostring(lua_State *L)
{
    view *v = check_view(L, 1);
    lua_pushfstring(L, "viewof: %p [%d size, %d count]", (void *)v, (int)v->row_size, (int)v->rows);
    return 1;
}

static int v_gc(lua_State *L)
{
    view *v = lua_touserdata(L, 1);
    if (v->copy) {
        void *ud;
        lua_Alloc alloc = lua_getallocf(L, &ud);
        alloc(ud, v->copy, v->len, 0);
    }
    if (v->fd >= 0) close(v->fd);
    v->copy = NULL;
    v->fd = -1;
    free(v->fields);
    v->fields = NULL;
    return 0;
}

/* ---- bundle.viewof ---------------------------------------------------------------------- */

/* Raises msg (a limit was reached) after logging it. */
static int limit_error(lua_State *L, const char *msg)
{
    sn_bundle_limit_hit(L, NULL, msg);
    return luaL_error(L, "%s", msg);
}

static void add_field(lua_State *L, view *v, enum ftype t, lua_Integer count)
{
    if (v->nfields >= v->lim.viewof_fields) {
        lua_pushfstring(L,
                        "bundle.viewof: more than %d fields in a record, the limit "
                        "viewof_fields",
                        v->lim.viewof_fields);
        limit_error(L, lua_tostring(L, -1));
    }
    if (count < 1 || (size_t)count > v->lim.viewof_max)
        luaL_error(L, "bundle.viewof: field %d: a count of %I", v->nfields + 1, count);
    if (v->nfields == v->cap) {
        int cap = v->cap ? v->cap * 2 : 16;
        field *f = realloc(v->fields, (size_t)cap * sizeof *f);
        if (!f) luaL_error(L, "bundle.viewof: out of memory");
        v->fields = f;
        v->cap = cap;
    }
    v->fields[v->nfields++] = (field){.type = t, .count = (unsigned)count};
}

/* "c10", "i", "s8 i H3": one or more fields. */
static void parse_fields(lua_State *L, view *v, const char *s)
{
    const char *start = s;
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        const char *at = strchr(type_letters, *s);
        if (!at)
            luaL_error(L, "bundle.viewof: format '%s': unknown type '%c' at %d (one of %s)", start,
                       *s, (int)(s - start) + 1, type_letters);
        s++;
        lua_Integer count = 1;
        if (isdigit((unsigned char)*s)) {
            char *end;
            long long n = strtoll(s, &end, 10);
            count = n > (long long)v->lim.viewof_max ? 0 : (lua_Integer)n;
            s = end;
        }
        add_field(L, v, (enum ftype)(at - type_letters), count);
    }
}

/* The entries of the format table at index 1 into v: a string names the file, a number N
 * adds N one-byte fields, a table describes the record (each row then a row object); a view
 * (the owner) is found by the caller. Returns the file name or NULL. */
static const char *parse_format(lua_State *L, view *v)
{
    const char *file = NULL;
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, 1, i);
        if (t == LUA_TSTRING) {
            file = lua_tostring(L, -1); /* stays valid: the table holds it */
        } else if (t == LUA_TNUMBER) {
            lua_Integer bytes = lua_tointeger(L, -1);
            if (bytes < 1) luaL_error(L, "bundle.viewof: format entry %d: %I bytes", (int)i, bytes);
            for (lua_Integer b = 0; b < bytes; b++)
                add_field(L, v, F_U8, 1);
        } else if (t == LUA_TTABLE) {
            v->table_rows = 1;
            lua_Integer m = (lua_Integer)lua_rawlen(L, -1);
            for (lua_Integer j = 1; j <= m; j++) {
                int ft = lua_rawgeti(L, -1, j);
                if (ft == LUA_TNUMBER)
                    add_field(L, v, F_U8, lua_tointeger(L, -1));
                else if (ft == LUA_TSTRING)
                    parse_fields(L, v, lua_tostring(L, -1));
                else
                    luaL_error(L,
                               "bundle.viewof: record entry %d: expected \"TYPE[N]\" or a "
                               "byte count, got %s",
                               (int)j, luaL_typename(L, -1));
                lua_pop(L, 1);
            }
        } else if (t != LUA_TUSERDATA) {
            luaL_error(L,
                       "bundle.viewof: format entry %d: expected a file name, a view, a "
                       "byte count or a record table, got %s",
                       (int)i, luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    return file;
}

int sn_bundle_viewof(lua_State *L)
{
    lua_settop(L, 4);
    view *v = lua_newuserdata(L, sizeof *v); /* 5 */
    memset(v, 0, sizeof *v);
    v->fd = -1;
    v->lim = sn_bundle_limits_of(L);
    static const luaL_Reg fns[] = {
        {"__index", v_index}, {"__newindex", v_newindex}, {"__len", v_len},
        {"__pairs", v_pairs}, {"__tostring", v_tostring}, {"__gc", v_gc},
        {NULL, NULL},
    };
    sn_bundle_metatable(L, VIEW_MT, fns);
    lua_setmetatable(L, 5);

    /* the owner view, when the format is a view or a table holding one */
    int owner_idx = 0;
    const char *file = NULL;
    switch (lua_type(L, 1)) {
    case LUA_TSTRING:
        file = lua_tostring(L, 1);
        break;
    case LUA_TUSERDATA:
        check_view(L, 1);
        owner_idx = 1;
        break;
    case LUA_TTABLE: {
        lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
        for (lua_Integer i = 1; i <= n && !owner_idx; i++) {
            if (lua_rawgeti(L, 1, i) == LUA_TUSERDATA) {
                check_view(L, -1);
                owner_idx = lua_gettop(L);
            } else {
                lua_pop(L, 1);
            }
        }
        file = parse_format(L, v);
        break;
    }
    default:
        return luaL_argerror(L, 1, "expected a file name, a view or a table {file|view, record}");
    }
    if (v->nfields == 0) add_field(L, v, F_U8, 1); /* no record: bytes */
    for (int j = 0; j < v->nfields; j++) {
        v->fields[j].offset = v->row_size;
        v->row_size += (size_t)type_size[v->fields[j].type] * v->fields[j].count;
        if (v->row_size > v->lim.viewof_max) {
            lua_pushfstring(L,
                            "bundle.viewof: a record of more than %I bytes, the limit "
                            "viewof_max",
                            (lua_Integer)v->lim.viewof_max);
            return limit_error(L, lua_tostring(L, -1));
        }
    }

    /* which rows: (start, rows), (rows), or all */
    lua_Integer start = 0, rows = -1;
    int fn = 2;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        if (lua_type(L, 3) == LUA_TNUMBER) {
            start = luaL_checkinteger(L, 2);
            rows = luaL_checkinteger(L, 3);
            fn = 4;
        } else {
            rows = luaL_checkinteger(L, 2);
            fn = 3;
        }
        if (start < 0 || rows < 0)
            return luaL_error(L, "bundle.viewof: start %I and rows %I must not be negative", start,
                              rows);
        if ((size_t)rows > v->lim.viewof_max / v->row_size ||
            (size_t)start > v->lim.viewof_max - (size_t)rows * v->row_size) {
            lua_pushfstring(L,
                            "bundle.viewof: %I rows of %I bytes from %I pass the %I bytes a "
                            "view maps, the limit viewof_max",
                            rows, (lua_Integer)v->row_size, start, (lua_Integer)v->lim.viewof_max);
            return limit_error(L, lua_tostring(L, -1));
        }
    }

    if (owner_idx) {
        view *o = check_view(L, owner_idx);
        size_t have = (size_t)o->rows * o->row_size;
        if (rows < 0) rows = (lua_Integer)(have / v->row_size);
        if ((size_t)start + (size_t)rows * v->row_size > have)
            return luaL_error(L, "bundle.viewof: %I + %I bytes pass the %I bytes of the view",
                              start, (lua_Integer)((size_t)rows * v->row_size), (lua_Integer)have);
        v->data = o->data + start;
        v->rows = rows;
        lua_pushvalue(L, owner_idx);
        lua_setuservalue(L, 5);
    } else {
        if (!file) return luaL_error(L, "bundle.viewof: no file or view given");
        int create = rows >= 0;
        int fd = open(file, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
        if (fd < 0) return luaL_error(L, "bundle.viewof: '%s': %s", file, strerror(errno));
        v->fd = fd; /* closed by __gc from here on */
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
            return luaL_error(L, "bundle.viewof: '%s' is not a regular file", file);
        if (rows < 0) {
            if ((size_t)st.st_size > v->lim.viewof_max) {
                lua_pushfstring(L,
                                "bundle.viewof: '%s' has %I bytes, past the %I a view maps, "
                                "the limit viewof_max: give start and rows",
                                file, (lua_Integer)st.st_size, (lua_Integer)v->lim.viewof_max);
                return limit_error(L, lua_tostring(L, -1));
            }
            rows = (lua_Integer)((size_t)st.st_size / v->row_size);
        }
        size_t len = (size_t)rows * v->row_size;
        if (len > 0) {
            if (create && (size_t)st.st_size < (size_t)start + len &&
                ftruncate(fd, (off_t)(start + (lua_Integer)len)) != 0)
                return luaL_error(L, "bundle.viewof: '%s': %s", file, strerror(errno));
            void *ud;
            lua_Alloc alloc = lua_getallocf(L, &ud);
            if (!(v->copy = alloc(ud, NULL, 0, len)))
                return luaL_error(L, "bundle.viewof: '%s': not enough memory for %I bytes "
                                     "(the actor's memory cap)", file, (lua_Integer)len);
            v->len = len;
            v->at = (off_t)start;
            char err[128];
            if (read_copy(v, err, sizeof err) != 0)
                return luaL_error(L, "bundle.viewof: '%s': %s", file, err);
            v->data = v->copy;
        }
        v->rows = rows;
    }
    if (lua_type(L, fn) == LUA_TFUNCTION) {
        int top = lua_gettop(L);
        lua_pushvalue(L, fn);
        lua_pushvalue(L, 5);
        lua_call(L, 1, LUA_MULTRET);
        return lua_gettop(L) - top;
    }
    lua_pushvalue(L, 5);
    return 1;
}
