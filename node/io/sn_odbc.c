/* sn_odbc: a pool per connection string; each connection is a thread that takes the first
 * queued job it may run: a free connection takes a job of any session not bound elsewhere,
 * a bound one (transaction, open cursor) only its session's. A watchdog thread cancels
 * (SQLCancel) statements past their deadline. A connection that fails is dropped and made
 * again on its next job. */
#include "sn_odbc.h"
#include "sn_clock.h"
#include "sn_error.h"

#include <errno.h>
#include <pthread.h>
#include <sql.h>
#include <sqlext.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct pool pool;

struct sn_odbc_job {
    sn_odbc_op op;
    uint64_t session;
    char *conn, *sql;
    int nparams;
    sn_odbc_value *params;
    long timeout_ms;
    sn_odbc_done done;
    void *ud;
    sn_odbc_job *next;
};

typedef struct conn {
    pool *p;
    pthread_t thread;
    int started;
    SQLHDBC dbc;
    SQLHSTMT stmt;   /* the open result, when cursor */
    int connected, cursor, txn;
    uint64_t session;    /* bound to it; 0: free (under p->mu) */
    pthread_mutex_t mu;  /* stmt and deadline, for the watchdog */
    double deadline;     /* monotonic seconds; 0: nothing runs */
    int cancelled;
    SQLHSTMT running;
    pthread_cond_t cv; /* a job of its session queued (bound connections wait here) */
} conn;

struct pool {
    sn_odbc *o;
    char *connstr;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job any free connection may take (free connections wait here) */
    sn_odbc_job *head, *tail;
    int queued;
    conn *conns;
    pool *next;
};

struct sn_odbc {
    sn_loop *loop;
    sn_log *log;
    sn_odbc_limits lim;
    SQLHENV env;
    pthread_mutex_t mu; /* pools */
    pool *pools;
    int npools;
    atomic_int stopping;
    atomic_uint_fast64_t sessions;
    pthread_t watchdog;
    int watchdog_started;
};

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

/* ---- results ---- */

typedef struct result {
    sn_odbc_result r;
    size_t cap;
    char err[1024];
} result;

static void result_fini(result *res)
{
    for (int i = 0; i < res->r.ncols; i++)
        free(res->r.names[i]);
    free(res->r.names);
    for (size_t i = 0; i < res->r.nrows * (size_t)res->r.ncols; i++)
        free(res->r.cells[i].s);
    free(res->r.cells);
}

/* The diagnostics of h as "SQLSTATE: text"; returns 1 when the connection is gone (08xxx). */
static int diag(SQLSMALLINT type, SQLHANDLE h, char *out, size_t n)
{
    SQLCHAR state[6] = "", text[512] = "";
    SQLINTEGER native = 0;
    SQLSMALLINT len = 0;
    if (!SQL_SUCCEEDED(SQLGetDiagRec(type, h, 1, state, &native, text, sizeof text, &len)))
        snprintf((char *)text, sizeof text, "no diagnostics");
    size_t tl = strlen((char *)text);
    while (tl && (text[tl - 1] == '\n' || text[tl - 1] == '\r'))
        text[--tl] = '\0';
    for (size_t i = 0; i < tl; i++) /* one line, for logs and scripts */
        if (text[i] == '\n' || text[i] == '\r') text[i] = ' ';
    snprintf(out, n, "%s: %s", state[0] ? (char *)state : "HY000", text);
    return state[0] == '0' && state[1] == '8';
}

static void finish(sn_odbc *o, sn_odbc_job *j, result *res)
{
    j->done(j->ud, &res->r);
    result_fini(res);
    sn_odbc_job_destroy(&j);
    sn_loop_work(o->loop, -1);
}

/* ---- one connection ---- */

static void drop_conn(conn *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->stmt) SQLFreeHandle(SQL_HANDLE_STMT, c->stmt);
    c->stmt = NULL;
    pthread_mutex_unlock(&c->mu);
    if (c->dbc) {
        if (c->connected) SQLDisconnect(c->dbc);
        SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
    }
    c->dbc = NULL;
    c->connected = c->cursor = c->txn = 0;
}

/* Connections are made one at a time, process-wide: the PostgreSQL driver (psqlODBC) calls
 * setlocale while it connects, which is not thread-safe; two connects at once read a locale
 * name the other freed (ASan, 4 statements in flight at start). */
static pthread_mutex_t connect_mu = PTHREAD_MUTEX_INITIALIZER;

static int connect_conn(conn *c, result *res)
{
    sn_odbc *o = c->p->o;
    if (c->connected) return 1;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, o->env, &c->dbc))) {
        c->dbc = NULL;
        snprintf(res->err, sizeof res->err, "cannot connect: out of ODBC handles");
        return 0;
    }
    SQLULEN secs = (SQLULEN)((o->lim.login_ms + 999) / 1000);
    SQLSetConnectAttr(c->dbc, SQL_ATTR_LOGIN_TIMEOUT, (SQLPOINTER)secs, 0);
    SQLSetConnectAttr(c->dbc, SQL_ATTR_CONNECTION_TIMEOUT, (SQLPOINTER)secs, 0);
    pthread_mutex_lock(&connect_mu);
    SQLRETURN rc = SQLDriverConnect(c->dbc, NULL, (SQLCHAR *)c->p->connstr, SQL_NTS, NULL, 0, NULL,
                                    SQL_DRIVER_NOPROMPT);
    pthread_mutex_unlock(&connect_mu);
    if (!SQL_SUCCEEDED(rc)) {
        char d[900];
        diag(SQL_HANDLE_DBC, c->dbc, d, sizeof d);
        snprintf(res->err, sizeof res->err, "cannot connect: %s", d);
        SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
        c->dbc = NULL;
        return 0;
    }
    c->connected = 1;
    return 1;
}

/* The statement failed: its error into res; a connection found gone is dropped. */
static void stmt_failed(conn *c, SQLHSTMT st, result *res, const char *what)
{
    char d[900];
    int gone = diag(SQL_HANDLE_STMT, st, d, sizeof d);
    SQLUINTEGER dead = SQL_CD_FALSE;
    if (!gone && c->dbc &&
        SQL_SUCCEEDED(SQLGetConnectAttr(c->dbc, SQL_ATTR_CONNECTION_DEAD, &dead, 0, NULL)) &&
        dead == SQL_CD_TRUE)
        gone = 1;
    pthread_mutex_lock(&c->mu);
    int cancelled = c->cancelled;
    pthread_mutex_unlock(&c->mu);
    if (cancelled == 2)
        snprintf(res->err, sizeof res->err, "cancelled: the node is stopping (%s)", d);
    else if (cancelled)
        snprintf(res->err, sizeof res->err,
                 "timeout: the statement ran past its limit and was cancelled (odbc_timeout, or "
                 ".executeTimeout) (%s)", d);
    else if (gone)
        snprintf(res->err, sizeof res->err, "the database connection was lost (%s); the pool "
                 "reconnects on the next statement", d);
    else
        snprintf(res->err, sizeof res->err, "%s: %s", what, d);
    if (gone) {
        if (st == c->stmt) c->stmt = NULL;
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        drop_conn(c);
        sn_log_write(c->p->o->log, SN_LOG_WARN, "odbc", "%s", res->err);
    }
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

static int bind_params(SQLHSTMT st, sn_odbc_job *j, SQLLEN *ind)
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

static int grow(result *res, size_t rows)
{
    size_t need = rows * (size_t)res->r.ncols;
    if (need <= res->cap) return 1;
    size_t cap = res->cap ? res->cap * 2 : (size_t)res->r.ncols * 16;
    while (cap < need)
        cap *= 2;
    sn_odbc_value *c = realloc(res->r.cells, cap * sizeof *c);
    if (!c) return 0;
    memset(c + res->cap, 0, (cap - res->cap) * sizeof *c);
    res->r.cells = c;
    res->cap = cap;
    return 1;
}

/* One cell, read as its column's kind, in at most budget bytes: 1, or 0 (the driver
 * failed), CELL_NOMEM, CELL_OVER. */
enum { CELL_NOMEM = -1, CELL_OVER = -2 };
static int get_cell(SQLHSTMT st, int col, SQLSMALLINT sqlt, sn_odbc_value *v, size_t budget)
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

static void close_cursor(conn *c)
{
    if (c->stmt) SQLFreeHandle(SQL_HANDLE_STMT, c->stmt);
    c->stmt = NULL;
    c->cursor = 0;
}

/* Up to batch rows of c->stmt into res; closes the cursor at the end of the result. */
static int fetch_batch(conn *c, result *res)
{
    SQLHSTMT st = c->stmt;
    SQLSMALLINT n = 0;
    SQLNumResultCols(st, &n);
    res->r.ncols = n;
    res->r.names = calloc(n ? (size_t)n : 1, sizeof *res->r.names);
    SQLSMALLINT *types = calloc(n ? (size_t)n : 1, sizeof *types);
    if (!res->r.names || !types) {
        free(types);
        snprintf(res->err, sizeof res->err, "out of memory");
        return 0;
    }
    for (int i = 0; i < n; i++) {
        SQLCHAR name[256] = "";
        SQLSMALLINT nl = 0, dd = 0, nullable = 0;
        SQLULEN size = 0;
        SQLDescribeCol(st, (SQLUSMALLINT)(i + 1), name, sizeof name, &nl, &types[i], &size, &dd,
                       &nullable);
        res->r.names[i] = strdup((char *)name);
        if (!res->r.names[i]) {
            free(types);
            snprintf(res->err, sizeof res->err, "out of memory");
            return 0;
        }
    }
    int batch = c->p->o->lim.batch;
    size_t bytes = 0, max = (size_t)c->p->o->lim.result_max;
    SQLRETURN rc = SQL_SUCCESS;
    while (res->r.nrows < (size_t)batch) {
        rc = SQLFetch(st);
        if (rc == SQL_NO_DATA) break;
        if (!SQL_SUCCEEDED(rc)) {
            free(types);
            stmt_failed(c, st, res, "fetch failed");
            if (c->connected) close_cursor(c);
            return 0;
        }
        if (!grow(res, res->r.nrows + 1)) {
            free(types);
            snprintf(res->err, sizeof res->err, "out of memory");
            return 0;
        }
        sn_odbc_value *row = res->r.cells + res->r.nrows * (size_t)n;
        res->r.nrows++;
        for (int i = 0; i < n; i++) {
            int got = get_cell(st, i + 1, types[i], &row[i], max - bytes);
            bytes += row[i].len + 16;
            if (got == 1 && bytes <= max) continue;
            free(types);
            if (got == 0) {
                stmt_failed(c, st, res, "reading a column failed");
                if (!c->connected) return 0;
            } else if (got == CELL_NOMEM) {
                snprintf(res->err, sizeof res->err, "out of memory");
            } else {
                snprintf(res->err, sizeof res->err,
                         "limit hit: a batch of rows over %zu bytes (odbc_result_max; fetch "
                         "fewer rows with odbc_batch, or select less)", max);
                sn_log_write(c->p->o->log, SN_LOG_WARN, "odbc", "%s", res->err);
            }
            close_cursor(c);
            return 0;
        }
    }
    free(types);
    res->r.more = rc != SQL_NO_DATA && res->r.nrows == (size_t)batch;
    if (res->r.more) {
        /* one more row tells whether the result really goes on; keep it for the next batch */
        c->cursor = 1;
    } else {
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        c->stmt = NULL;
        c->cursor = 0;
    }
    return 1;
}

static void run_exec(conn *c, sn_odbc_job *j, result *res)
{
    sn_odbc *o = c->p->o;
    close_cursor(c);
    SQLHSTMT st;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st))) {
        char d[900];
        int gone = diag(SQL_HANDLE_DBC, c->dbc, d, sizeof d);
        snprintf(res->err, sizeof res->err, "cannot make a statement: %s", d);
        if (gone) drop_conn(c);
        return;
    }
    SQLLEN *ind = calloc(j->nparams ? (size_t)j->nparams : 1, sizeof *ind);
    if (!ind || !bind_params(st, j, ind)) {
        if (ind)
            stmt_failed(c, st, res, "binding a parameter failed");
        else
            snprintf(res->err, sizeof res->err, "out of memory");
        if (c->connected) SQLFreeHandle(SQL_HANDLE_STMT, st);
        free(ind);
        return;
    }
    long ms = j->timeout_ms > 0 && j->timeout_ms < o->lim.timeout_ms ? j->timeout_ms
                                                                    : o->lim.timeout_ms;
    pthread_mutex_lock(&c->mu);
    c->running = st;
    c->cancelled = 0;
    c->deadline = sn_clock_mono() + (double)ms / 1000.0;
    pthread_mutex_unlock(&c->mu);
    SQLRETURN rc = SQLExecDirect(st, (SQLCHAR *)j->sql, SQL_NTS);
    pthread_mutex_lock(&c->mu);
    c->running = NULL;
    c->deadline = 0;
    pthread_mutex_unlock(&c->mu);
    free(ind);
    if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) {
        stmt_failed(c, st, res, "the statement failed");
        if (c->connected) SQLFreeHandle(SQL_HANDLE_STMT, st);
        return;
    }
    SQLSMALLINT n = 0;
    SQLNumResultCols(st, &n);
    if (n == 0) {
        SQLLEN rows = -1;
        SQLRowCount(st, &rows);
        res->r.affected = (long)rows;
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        return;
    }
    c->stmt = st;
    fetch_batch(c, res);
}

static void end_txn(conn *c, int commit, result *res)
{
    if (!c->txn) return;
    SQLRETURN rc = SQLEndTran(SQL_HANDLE_DBC, c->dbc, commit ? SQL_COMMIT : SQL_ROLLBACK);
    if (!SQL_SUCCEEDED(rc) && res) {
        char d[900];
        int gone = diag(SQL_HANDLE_DBC, c->dbc, d, sizeof d);
        snprintf(res->err, sizeof res->err, "%s failed: %s", commit ? "commit" : "rollback", d);
        if (gone) {
            drop_conn(c);
            return;
        }
    }
    SQLSetConnectAttr(c->dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER)SQL_AUTOCOMMIT_ON, 0);
    c->txn = 0;
}

static void run(conn *c, sn_odbc_job *j, result *res)
{
    if (j->op == SN_ODBC_FETCH) {
        if (!c->cursor)
            snprintf(res->err, sizeof res->err, "the result set is closed (read to its end, or "
                     "left idle past odbc_idle)");
        else
            fetch_batch(c, res);
        return;
    }
    if (j->op == SN_ODBC_CLOSE && !c->connected) return;
    if (!connect_conn(c, res)) return;
    switch (j->op) {
    case SN_ODBC_EXEC: run_exec(c, j, res); break;
    case SN_ODBC_BEGIN:
        close_cursor(c);
        if (c->txn) {
            snprintf(res->err, sizeof res->err, "a transaction is already open");
            break;
        }
        if (!SQL_SUCCEEDED(SQLSetConnectAttr(c->dbc, SQL_ATTR_AUTOCOMMIT,
                                             (SQLPOINTER)SQL_AUTOCOMMIT_OFF, 0))) {
            char d[900];
            if (diag(SQL_HANDLE_DBC, c->dbc, d, sizeof d)) drop_conn(c);
            snprintf(res->err, sizeof res->err, "begin failed: %s", d);
            break;
        }
        c->txn = 1;
        break;
    case SN_ODBC_COMMIT:
    case SN_ODBC_ROLLBACK:
        close_cursor(c);
        if (!c->txn)
            snprintf(res->err, sizeof res->err, "no transaction is open (begin first)");
        else
            end_txn(c, j->op == SN_ODBC_COMMIT, res);
        break;
    case SN_ODBC_CLOSE:
        close_cursor(c);
        end_txn(c, 1, res);
        break;
    default: break;
    }
}

/* ---- the pool's threads ---- */

static int bound_elsewhere(pool *p, uint64_t session)
{
    if (!session) return 0;
    for (int i = 0; i < p->o->lim.pool; i++)
        if (p->conns[i].session == session) return 1;
    return 0;
}

/* Under p->mu: the first job c may run, unlinked; NULL: none. */
static sn_odbc_job *take(pool *p, conn *c)
{
    sn_odbc_job *prev = NULL;
    for (sn_odbc_job *j = p->head; j; prev = j, j = j->next) {
        if (c->session ? j->session != c->session : bound_elsewhere(p, j->session)) continue;
        if (prev)
            prev->next = j->next;
        else
            p->head = j->next;
        if (p->tail == j) p->tail = prev;
        j->next = NULL;
        p->queued--;
        return j;
    }
    return NULL;
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    pool *p = c->p;
    sn_odbc *o = p->o;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (atomic_load(&o->stopping)) break;
        sn_odbc_job *j = take(p, c);
        if (!j) {
            if (!c->session) {
                pthread_cond_wait(&p->cv, &p->mu);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += o->lim.idle_ms / 1000;
            ts.tv_nsec += (o->lim.idle_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&c->cv, &p->mu, &ts) == ETIMEDOUT &&
                !(j = take(p, c))) {
                sn_log_write(o->log, SN_LOG_WARN, "odbc",
                             "a session left its %s idle past %ld ms (odbc_idle): rolled back "
                             "and its connection freed",
                             c->txn ? "transaction" : "open result", o->lim.idle_ms);
                c->session = 0;
                pthread_mutex_unlock(&p->mu);
                close_cursor(c);
                end_txn(c, 0, NULL);
                pthread_mutex_lock(&p->mu); /* it loops: free now, it takes what waits */
            }
            if (!j) continue;
        }
        c->session = j->session;
        pthread_mutex_unlock(&p->mu);
        result res;
        memset(&res, 0, sizeof res);
        res.r.affected = -1;
        run(c, j, &res);
        if (res.err[0]) res.r.error = res.err;
        int keep = j->session && (c->txn || c->cursor) && c->connected;
        pthread_mutex_lock(&p->mu);
        if (!keep) c->session = 0; /* it loops: free now, it takes what waits */
        pthread_mutex_unlock(&p->mu);
        finish(o, j, &res);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    close_cursor(c);
    end_txn(c, 0, NULL);
    drop_conn(c);
    return NULL;
}

static void *watchdog_main(void *arg)
{
    sn_odbc *o = arg;
    while (!atomic_load(&o->stopping)) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        double now = sn_clock_mono();
        pthread_mutex_lock(&o->mu);
        for (pool *p = o->pools; p; p = p->next)
            for (int i = 0; i < o->lim.pool; i++) {
                conn *c = &p->conns[i];
                pthread_mutex_lock(&c->mu);
                if (c->running && c->deadline > 0 && now > c->deadline && !c->cancelled) {
                    c->cancelled = 1;
                    SQLCancel(c->running);
                    sn_log_write(o->log, SN_LOG_WARN, "odbc",
                                 "a statement ran past its timeout: cancelled (odbc_timeout)");
                }
                pthread_mutex_unlock(&c->mu);
            }
        pthread_mutex_unlock(&o->mu);
    }
    return NULL;
}

/* Under o->mu: the pool of connstr, made (threads started) when new; NULL when at the limit
 * of pools or out of resources. */
static pool *pool_of(sn_odbc *o, const char *connstr)
{
    for (pool *p = o->pools; p; p = p->next)
        if (strcmp(p->connstr, connstr) == 0) return p;
    if (o->npools >= o->lim.pools) return NULL;
    pool *p = calloc(1, sizeof *p);
    if (!p || !(p->connstr = strdup(connstr)) ||
        !(p->conns = calloc((size_t)o->lim.pool, sizeof *p->conns))) {
        if (p) free(p->connstr);
        free(p);
        return NULL;
    }
    p->o = o;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < o->lim.pool; i++) {
        p->conns[i].p = p;
        pthread_mutex_init(&p->conns[i].mu, NULL);
        pthread_cond_init(&p->conns[i].cv, NULL);
        p->conns[i].started = pthread_create(&p->conns[i].thread, NULL, conn_main,
                                             &p->conns[i]) == 0;
    }
    p->next = o->pools;
    o->pools = p;
    o->npools++;
    return p;
}

int sn_odbc_submit(sn_odbc *o, sn_odbc_job *j, char *err, size_t errlen)
{
    pthread_mutex_lock(&o->mu);
    pool *p = pool_of(o, j->conn);
    pthread_mutex_unlock(&o->mu);
    if (!p) {
        snprintf(err, errlen, "too many data sources (odbc_pools = %d)", o->lim.pools);
        sn_log_write(o->log, SN_LOG_WARN, "odbc", "refused: limit hit: %s", err);
        return SN_EFULL;
    }
    pthread_mutex_lock(&p->mu);
    if (p->queued >= o->lim.queue && j->op != SN_ODBC_CLOSE) {
        pthread_mutex_unlock(&p->mu);
        snprintf(err, errlen,
                 "the pool is exhausted: %d connections busy and %d statements waiting "
                 "(odbc_pool, odbc_queue)",
                 o->lim.pool, o->lim.queue);
        sn_log_write(o->log, SN_LOG_WARN, "odbc", "refused: limit hit: %s", err);
        return SN_EFULL;
    }
    sn_loop_work(o->loop, 1);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    /* one thread to wake: the connection its session is bound to, else any free one (a
     * busy connection looks at the queue before it waits, so no job is left behind) */
    conn *bound = NULL;
    for (int i = 0; j->session && i < o->lim.pool && !bound; i++)
        if (p->conns[i].session == j->session) bound = &p->conns[i];
    pthread_cond_signal(bound ? &bound->cv : &p->cv);
    pthread_mutex_unlock(&p->mu);
    return SN_OK;
}

uint64_t sn_odbc_session(sn_odbc *o)
{
    return atomic_fetch_add(&o->sessions, 1) + 1;
}

const sn_odbc_limits *sn_odbc_limits_of(sn_odbc *o)
{
    return &o->lim;
}

sn_odbc *sn_odbc_new(sn_loop *loop, sn_log *log, const sn_odbc_limits *limits)
{
    sn_odbc *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->loop = loop;
    o->log = log;
    o->lim = *limits;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &o->env)) ||
        !SQL_SUCCEEDED(SQLSetEnvAttr(o->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0))) {
        sn_log_write(log, SN_LOG_ERROR, "odbc", "cannot make the ODBC environment");
        if (o->env) SQLFreeHandle(SQL_HANDLE_ENV, o->env);
        free(o);
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    atomic_init(&o->stopping, 0);
    atomic_init(&o->sessions, 0);
    o->watchdog_started = pthread_create(&o->watchdog, NULL, watchdog_main, o) == 0;
    return o;
}

void sn_odbc_destroy(sn_odbc **op)
{
    if (!op || !*op) return;
    sn_odbc *o = *op;
    atomic_store(&o->stopping, 1);
    if (o->watchdog_started) pthread_join(o->watchdog, NULL);
    for (pool *p = o->pools; p; p = p->next) {
        for (int i = 0; i < o->lim.pool; i++) { /* what runs ends now */
            conn *c = &p->conns[i];
            pthread_mutex_lock(&c->mu);
            if (c->running) {
                c->cancelled = 2; /* what it fails with is the stop, not the statement */
                SQLCancel(c->running);
            }
            pthread_mutex_unlock(&c->mu);
        }
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        for (int i = 0; i < o->lim.pool; i++)
            pthread_cond_broadcast(&p->conns[i].cv);
        pthread_mutex_unlock(&p->mu);
    }
    while (o->pools) {
        pool *p = o->pools;
        o->pools = p->next;
        for (int i = 0; i < o->lim.pool; i++) {
            if (p->conns[i].started) pthread_join(p->conns[i].thread, NULL);
            pthread_mutex_destroy(&p->conns[i].mu);
            pthread_cond_destroy(&p->conns[i].cv);
        }
        while (p->head) {
            sn_odbc_job *j = p->head;
            p->head = j->next;
            j->done(j->ud, NULL);
            sn_odbc_job_destroy(&j);
            sn_loop_work(o->loop, -1);
        }
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p->conns);
        free(p->connstr);
        free(p);
    }
    SQLFreeHandle(SQL_HANDLE_ENV, o->env);
    pthread_mutex_destroy(&o->mu);
    free(o);
    *op = NULL;
}
