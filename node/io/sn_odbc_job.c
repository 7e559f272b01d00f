/* sn_odbc_job: jobs (sn_odbc.h's job API) and the conversions of values into bound
 * parameters and out of result cells. */
#include "sn_odbc_job.h"
#include "sn_error.h"

#include <stdlib.h>
#include <string.h>

/* ---- jobs ---- */

sn_odbc_job *sn_odbc_job_new(sn_odbc_op op, uint64_t session, const char *c, const char *sql,
                             int nparams, sn_odbc_done done, void *ud)
{
    sn_odbc_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->op = op;
    j->session = session;
    j->done = done;
    j->ud = ud;
    j->nparams = nparams;
    j->conn = strdup(c);
    j->sql = sql ? strdup(sql) : NULL;
    j->params = nparams ? calloc((size_t)nparams, sizeof *j->params) : NULL;
    if (!j->conn || (sql && !j->sql) || (nparams && !j->params)) {
        sn_odbc_job_destroy(&j);
        return NULL;
    }
    return j;
}

int sn_odbc_job_param(sn_odbc_job *j, int i, const sn_odbc_value *v)
{
    sn_odbc_value *d = &j->params[i];
    *d = *v;
    d->s = NULL;
    if (v->kind == SN_ODBC_TEXT || v->kind == SN_ODBC_BLOB) {
        if (!(d->s = malloc(v->len + 1))) return SN_ENOMEM;
        memcpy(d->s, v->s, v->len);
        d->s[v->len] = '\0';
    }
    return SN_OK;
}

void sn_odbc_job_timeout(sn_odbc_job *j, long ms)
{
    j->timeout_ms = ms;
}

void sn_odbc_job_destroy(sn_odbc_job **jp)
{
    if (!jp || !*jp) return;
    sn_odbc_job *j = *jp;
    for (int i = 0; i < j->nparams; i++)
        free(j->params[i].s);
    free(j->params);
    free(j->conn);
    free(j->sql);
    free(j);
    *jp = NULL;
}

static SQLSMALLINT sql_type_of(const sn_odbc_value *v)
{
    switch (v->type) {
    case 'W': return SQL_WVARCHAR;
    case 'w': return SQL_WCHAR;
    case 'C': return SQL_VARCHAR;
    case 'c': return SQL_CHAR;
    case 'B': return SQL_VARBINARY;
    case 'b': case 'T': return SQL_TINYINT;
    case 's': case 'S': return SQL_SMALLINT;
    case 'i': case 'I': return SQL_INTEGER;
    case 'l': case 'L': return SQL_BIGINT;
    case 'f': return SQL_REAL;
    case 'd': return SQL_DOUBLE;
    case 'D': return SQL_TYPE_TIMESTAMP;
    default: break;
    }
    switch (v->kind) {
    case SN_ODBC_INT: return SQL_BIGINT;
    case SN_ODBC_DOUBLE: return SQL_DOUBLE;
    case SN_ODBC_BLOB: return SQL_VARBINARY;
    default: return SQL_VARCHAR;
    }
}

int sn_odbc_bind_params(SQLHSTMT st, sn_odbc_job *j, SQLLEN *ind)
{
    for (int i = 0; i < j->nparams; i++) {
        sn_odbc_value *v = &j->params[i];
        SQLSMALLINT ct, sqlt = sql_type_of(v);
        SQLPOINTER p;
        SQLULEN size = 0;
        ind[i] = 0;
        switch (v->kind) {
        case SN_ODBC_NULL:
            ct = SQL_C_CHAR;
            p = NULL;
            ind[i] = SQL_NULL_DATA;
            size = 1;
            if (sqlt == SQL_VARBINARY) sqlt = SQL_VARCHAR;
            break;
        case SN_ODBC_INT:
            ct = SQL_C_SBIGINT;
            p = &v->i;
            size = 19;
            break;
        case SN_ODBC_DOUBLE:
            ct = SQL_C_DOUBLE;
            p = &v->d;
            size = 15;
            break;
        case SN_ODBC_BLOB:
            ct = SQL_C_BINARY;
            p = v->s;
            ind[i] = (SQLLEN)v->len;
            size = v->len ? v->len : 1;
            break;
        default:
            ct = SQL_C_CHAR;
            p = v->s;
            ind[i] = (SQLLEN)v->len;
            size = v->len ? v->len : 1;
            break;
        }
        if (!SQL_SUCCEEDED(SQLBindParameter(st, (SQLUSMALLINT)(i + 1), SQL_PARAM_INPUT, ct, sqlt,
                                            size, 0, p, (SQLLEN)(v->len), &ind[i])))
            return 0;
    }
    return 1;
}

int sn_odbc_get_cell(SQLHSTMT st, int col, SQLSMALLINT sqlt, sn_odbc_value *v, size_t budget)
{
    SQLLEN ind = 0;
    SQLRETURN rc;
    switch (sqlt) {
    case SQL_TINYINT: case SQL_SMALLINT: case SQL_INTEGER: case SQL_BIGINT: case SQL_BIT:
        rc = SQLGetData(st, (SQLUSMALLINT)col, SQL_C_SBIGINT, &v->i, sizeof v->i, &ind);
        v->kind = SN_ODBC_INT;
        break;
    case SQL_REAL: case SQL_FLOAT: case SQL_DOUBLE:
        rc = SQLGetData(st, (SQLUSMALLINT)col, SQL_C_DOUBLE, &v->d, sizeof v->d, &ind);
        v->kind = SN_ODBC_DOUBLE;
        break;
    default: {
        int bin = sqlt == SQL_BINARY || sqlt == SQL_VARBINARY || sqlt == SQL_LONGVARBINARY;
        SQLSMALLINT ct = bin ? SQL_C_BINARY : SQL_C_CHAR;
        size_t cap = 256, len = 0, term = bin ? 0 : 1;
        char *buf = malloc(cap);
        if (!buf) return CELL_NOMEM;
        for (;;) {
            rc = SQLGetData(st, (SQLUSMALLINT)col, ct, buf + len, (SQLLEN)(cap - len), &ind);
            if (rc == SQL_NO_DATA) break;
            if (!SQL_SUCCEEDED(rc) || ind == SQL_NULL_DATA) break;
            if (rc == SQL_SUCCESS_WITH_INFO && (ind == SQL_NO_TOTAL || (size_t)ind >= cap - len)) {
                len = cap - term; /* the part read, less its terminator */
                size_t ncap = ind == SQL_NO_TOTAL ? cap * 2 : len + (size_t)ind + 1;
                if (ncap > budget + 1) { /* checked before allocating */
                    free(buf);
                    return CELL_OVER;
                }
                char *nb = realloc(buf, ncap);
                if (!nb) {
                    free(buf);
                    return CELL_NOMEM;
                }
                buf = nb;
                cap = ncap;
                continue;
            }
            len += (size_t)ind;
            break;
        }
        if (ind == SQL_NULL_DATA || (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA)) {
            free(buf);
            v->kind = SN_ODBC_NULL;
            return SQL_SUCCEEDED(rc) || rc == SQL_NO_DATA;
        }
        char *nb = realloc(buf, len + 1);
        if (nb) buf = nb;
        buf[len] = '\0';
        v->s = buf;
        v->len = len;
        v->kind = bin ? SN_ODBC_BLOB : SN_ODBC_TEXT;
        return 1;
    }
    }
    if (!SQL_SUCCEEDED(rc)) return 0;
    if (ind == SQL_NULL_DATA) v->kind = SN_ODBC_NULL;
    return 1;
}

