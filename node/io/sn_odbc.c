/* sn_odbc: a pool per connection string; each connection is a thread that takes the first
 * queued job it may run: a free connection takes a job of any session not bound elsewhere,
 * a bound one (transaction, open cursor) only its session's. A watchdog thread cancels
 * (SQLCancel) statements past their deadline. A connection that fails is dropped and made
 * again on its next job. */
#include "sn_odbc.h"
#include "sn_odbc_job.h"
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
    /* statements with parameters kept prepared (SQLPrepare once, SQLExecute after: the
     * server parses and plans them once), replaced round robin; lim.prepared of them */
    SQLHSTMT *prep;
    char **prep_sql;
    int prep_next;
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

/* The slot of st among c's prepared statements, or -1. */
static int prep_slot(const conn *c, SQLHSTMT st)
{
    for (int i = 0; st && c->prep && i < c->p->o->lim.prepared; i++)
        if (c->prep[i] == st) return i;
    return -1;
}

/* Takes st out of c's prepared statements (the caller frees it). */
static void prep_forget(conn *c, SQLHSTMT st)
{
    int i = prep_slot(c, st);
    if (i < 0) return;
    free(c->prep_sql[i]);
    c->prep_sql[i] = NULL;
    c->prep[i] = NULL;
}

/* A statement is over: a prepared one that ended well is kept (its cursor closed), any
 * other is freed. */
static void stmt_done(conn *c, SQLHSTMT st, int ok)
{
    if (ok && prep_slot(c, st) >= 0) {
        SQLFreeStmt(st, SQL_CLOSE);
        return;
    }
    prep_forget(c, st);
    if (c->connected) SQLFreeHandle(SQL_HANDLE_STMT, st);
}

static void drop_conn(conn *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->stmt && prep_slot(c, c->stmt) < 0) SQLFreeHandle(SQL_HANDLE_STMT, c->stmt);
    c->stmt = NULL;
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; c->prep && i < c->p->o->lim.prepared; i++) {
        if (c->prep[i] && c->connected) SQLFreeHandle(SQL_HANDLE_STMT, c->prep[i]);
        c->prep[i] = NULL;
        free(c->prep_sql[i]);
        c->prep_sql[i] = NULL;
    }
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
    else if (cancelled) {
        char detail[sizeof res->err];
        snprintf(detail, sizeof detail, "the statement ran past its limit and was cancelled "
                 "(odbc_timeout, or .executeTimeout) (%s)", d);
        sn_error_text(SN_ETIMEDOUT, detail, res->err, sizeof res->err);
    }
    else if (gone)
        snprintf(res->err, sizeof res->err, "the database connection was lost (%s); the pool "
                 "reconnects on the next statement", d);
    else
        snprintf(res->err, sizeof res->err, "%s: %s", what, d);
    if (gone) {
        if (st == c->stmt) c->stmt = NULL;
        prep_forget(c, st);
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        drop_conn(c);
        sn_log_write(c->p->o->log, SN_LOG_WARN, "odbc", "%s", res->err);
    }
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

static void close_cursor(conn *c)
{
    if (c->stmt) stmt_done(c, c->stmt, 1);
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
            int got = sn_odbc_get_cell(st, i + 1, types[i], &row[i], max - bytes);
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
        stmt_done(c, st, 1);
        c->stmt = NULL;
        c->cursor = 0;
    }
    return 1;
}

/* The statement for j's SQL: a prepared one from c's cache (its parameters reset), or a new
 * one, prepared and kept when j has parameters and the cache is on. *prepared says which way
 * it runs (SQLExecute or SQLExecDirect). NULL after an error, put into res. */
static SQLHSTMT stmt_for(conn *c, sn_odbc_job *j, result *res, int *prepared)
{
    int keep = c->p->o->lim.prepared;
    *prepared = 0;
    if (keep > 0 && j->nparams > 0 && c->prep) {
        for (int i = 0; i < keep; i++) {
            if (c->prep[i] && strcmp(c->prep_sql[i], j->sql) == 0) {
                SQLFreeStmt(c->prep[i], SQL_RESET_PARAMS);
                *prepared = 1;
                return c->prep[i];
            }
        }
    }
    SQLHSTMT st;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st))) {
        char d[900];
        int gone = diag(SQL_HANDLE_DBC, c->dbc, d, sizeof d);
        snprintf(res->err, sizeof res->err, "cannot make a statement: %s", d);
        if (gone) drop_conn(c);
        return NULL;
    }
    if (keep <= 0 || j->nparams == 0 || !c->prep) return st;
    char *copy = strdup(j->sql);
    if (!copy) return st; /* runs unprepared */
    if (!SQL_SUCCEEDED(SQLPrepare(st, (SQLCHAR *)j->sql, SQL_NTS))) {
        free(copy);
        stmt_failed(c, st, res, "the statement failed");
        if (c->connected) SQLFreeHandle(SQL_HANDLE_STMT, st);
        return NULL;
    }
    int i = c->prep_next;
    c->prep_next = (i + 1) % keep;
    if (c->prep[i]) { /* the oldest goes */
        SQLFreeHandle(SQL_HANDLE_STMT, c->prep[i]);
        free(c->prep_sql[i]);
    }
    c->prep[i] = st;
    c->prep_sql[i] = copy;
    *prepared = 1;
    return st;
}

static void run_exec(conn *c, sn_odbc_job *j, result *res)
{
    sn_odbc *o = c->p->o;
    close_cursor(c);
    int prepared;
    SQLHSTMT st = stmt_for(c, j, res, &prepared);
    if (!st) return;
    SQLLEN *ind = calloc(j->nparams ? (size_t)j->nparams : 1, sizeof *ind);
    if (!ind || !sn_odbc_bind_params(st, j, ind)) {
        if (ind)
            stmt_failed(c, st, res, "binding a parameter failed");
        else
            snprintf(res->err, sizeof res->err, "out of memory");
        stmt_done(c, st, 0);
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
    SQLRETURN rc = prepared ? SQLExecute(st) : SQLExecDirect(st, (SQLCHAR *)j->sql, SQL_NTS);
    pthread_mutex_lock(&c->mu);
    c->running = NULL;
    c->deadline = 0;
    pthread_mutex_unlock(&c->mu);
    free(ind);
    if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) {
        stmt_failed(c, st, res, "the statement failed");
        if (c->connected) stmt_done(c, st, 0);
        return;
    }
    SQLSMALLINT n = 0;
    SQLNumResultCols(st, &n);
    if (n == 0) {
        SQLLEN rows = -1;
        SQLRowCount(st, &rows);
        res->r.affected = (long)rows;
        stmt_done(c, st, 1);
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
        if (o->lim.prepared > 0) { /* without them, the connection prepares nothing */
            p->conns[i].prep = calloc((size_t)o->lim.prepared, sizeof *p->conns[i].prep);
            p->conns[i].prep_sql = calloc((size_t)o->lim.prepared, sizeof(char *));
            if (!p->conns[i].prep || !p->conns[i].prep_sql) {
                free(p->conns[i].prep);
                free(p->conns[i].prep_sql);
                p->conns[i].prep = NULL;
                p->conns[i].prep_sql = NULL;
            }
        }
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
            free(p->conns[i].prep);
            free(p->conns[i].prep_sql);
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
