/* sn_bjson: both directions walk a tree with a depth bound; cJSON builds and prints the JSON
 * side, sn_mpack reads and writes the MessagePack side. */
#include "sn_bjson.h"
#include "sn_bwire.h"
#include "sn_error.h"
#include "sn_mpack.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put(const cJSON *j, sn_buf *out, int depth)
{
    if (depth > SN_BJSON_DEPTH)
        return SN_ELIMIT;
    if (cJSON_IsNull(j))
        return sn_mpack_put_nil(out);
    if (cJSON_IsBool(j))
        return sn_mpack_put_bool(out, cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) <= 9007199254740992.0)
            return sn_mpack_put_int(out, (int64_t)d);
        return sn_mpack_put_double(out, d);
    }
    if (cJSON_IsString(j))
        return sn_mpack_put_str(out, j->valuestring, strlen(j->valuestring));
    uint32_t n = (uint32_t)cJSON_GetArraySize(j);
    int rc = cJSON_IsArray(j) ? sn_mpack_put_array(out, n) : sn_mpack_put_map(out, n);
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
        if (rc == SN_OK && cJSON_IsObject(j))
            rc = sn_mpack_put_str(out, c->string, strlen(c->string));
        if (rc == SN_OK)
            rc = put(c, out, depth + 1);
    }
    return rc;
}

int sn_bjson_to_mpack(const char *text, size_t len, sn_buf *out, char *err, size_t errlen)
{
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j) {
        snprintf(err, errlen, "not JSON");
        return SN_EPROTO;
    }
    size_t before = out->len;
    int rc = put(j, out, 1);
    cJSON_Delete(j);
    if (rc != SN_OK) {
        out->len = before;
        snprintf(err, errlen, rc == SN_ELIMIT ? "JSON nested deeper than %d" : "out of memory",
                 SN_BJSON_DEPTH);
        return rc == SN_ELIMIT ? SN_EPROTO : rc;
    }
    return SN_OK;
}

typedef struct reader {
    const uint8_t *p, *end;
    char *err;
    size_t errlen;
} reader;

static cJSON *get(reader *r, int depth, int *rc)
{
    sn_mpack_item it;
    if (depth > SN_BJSON_DEPTH) {
        snprintf(r->err, r->errlen, "nested deeper than %d", SN_BJSON_DEPTH);
        *rc = SN_EINVAL;
        return NULL;
    }
    if (sn_mpack_read(&r->p, r->end, &it) != SN_MPACK_OK) {
        snprintf(r->err, r->errlen, "malformed MessagePack");
        *rc = SN_EPROTO;
        return NULL;
    }
    switch (it.type) {
    case SN_MPACK_NIL: return cJSON_CreateNull();
    case SN_MPACK_BOOL: return cJSON_CreateBool((int)it.v.u);
    case SN_MPACK_UINT: /* exact, as text: cJSON would print a double */
    case SN_MPACK_INT: {
        char num[32];
        if (it.type == SN_MPACK_UINT)
            snprintf(num, sizeof num, "%llu", (unsigned long long)it.v.u);
        else
            snprintf(num, sizeof num, "%lld", (long long)it.v.i);
        return cJSON_CreateRaw(num);
    }
    case SN_MPACK_FLOAT: return cJSON_CreateNumber(it.v.f);
    case SN_MPACK_DOUBLE: return cJSON_CreateNumber(it.v.d);
    case SN_MPACK_STR:
    case SN_MPACK_BIN: {
        if (!sn_utf8_valid(it.data, it.v.u)) {
            snprintf(r->err, r->errlen, "a string that is not UTF-8 cannot be JSON text");
            *rc = SN_EINVAL;
            return NULL;
        }
        char *s = malloc(it.v.u + 1);
        if (!s) {
            *rc = SN_ENOMEM;
            return NULL;
        }
        memcpy(s, it.data, it.v.u);
        s[it.v.u] = 0;
        cJSON *j = cJSON_CreateString(s);
        free(s);
        return j;
    }
    case SN_MPACK_ARRAY:
    case SN_MPACK_MAP: {
        int map = it.type == SN_MPACK_MAP;
        if (it.v.u > (uint64_t)(r->end - r->p)) { /* every element takes a byte at least */
            snprintf(r->err, r->errlen, "malformed MessagePack");
            *rc = SN_EPROTO;
            return NULL;
        }
        cJSON *j = map ? cJSON_CreateObject() : cJSON_CreateArray();
        for (uint64_t i = 0; j && i < it.v.u; i++) {
            char key[64];
            const char *k = NULL;
            char *kbuf = NULL;
            if (map) {
                sn_mpack_item ki;
                if (sn_mpack_read(&r->p, r->end, &ki) != SN_MPACK_OK) {
                    snprintf(r->err, r->errlen, "malformed MessagePack");
                    *rc = SN_EPROTO;
                    cJSON_Delete(j);
                    return NULL;
                }
                if (ki.type == SN_MPACK_STR && sn_utf8_valid(ki.data, ki.v.u)) {
                    kbuf = malloc(ki.v.u + 1);
                    if (kbuf) {
                        memcpy(kbuf, ki.data, ki.v.u);
                        kbuf[ki.v.u] = 0;
                    }
                    k = kbuf;
                } else if (ki.type == SN_MPACK_UINT || ki.type == SN_MPACK_INT) {
                    snprintf(key, sizeof key, ki.type == SN_MPACK_UINT ? "%llu" : "%lld",
                             ki.type == SN_MPACK_UINT ? (unsigned long long)ki.v.u
                                                      : (unsigned long long)ki.v.i);
                    k = key;
                } else {
                    snprintf(r->err, r->errlen, "a map key that is not a string or an integer");
                    *rc = SN_EINVAL;
                    cJSON_Delete(j);
                    return NULL;
                }
            }
            cJSON *v = get(r, depth + 1, rc);
            if (!v || (map && !k)) {
                free(kbuf);
                cJSON_Delete(v);
                cJSON_Delete(j);
                return NULL;
            }
            if (map)
                cJSON_AddItemToObject(j, k, v);
            else
                cJSON_AddItemToArray(j, v);
            free(kbuf);
        }
        return j;
    }
    case SN_MPACK_EXT:
        snprintf(r->err, r->errlen, "a value that JSON cannot hold (a function or a metatable)");
        *rc = SN_EINVAL;
        return NULL;
    }
    *rc = SN_EPROTO;
    return NULL;
}

int sn_bjson_from_mpack(const void *p, size_t len, sn_buf *out, char *err, size_t errlen)
{
    reader r = {p, (const uint8_t *)p + len, err, errlen};
    int rc = SN_ENOMEM;
    cJSON *j = get(&r, 1, &rc);
    if (!j)
        return rc;
    if (r.p != r.end) {
        cJSON_Delete(j);
        snprintf(err, errlen, "bytes after the value");
        return SN_EPROTO;
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return SN_ENOMEM;
    }
    size_t n = strlen(s);
    rc = sn_mpack_put_raw(out, s, n);
    free(s);
    return rc;
}
