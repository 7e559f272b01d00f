/* sn_odbc: SQL statements on unixODBC, run off the actors' threads: one pool of connections
 * per connection string, each connection on a thread of its own. It knows no Lua and no
 * actor: who waits for a result lives in the job's ud, and done runs on the pool's thread. */
#ifndef SN_ODBC_H
#define SN_ODBC_H

#include "sn_log.h"
#include "sn_loop.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sn_odbc sn_odbc;
typedef struct sn_odbc_job sn_odbc_job;

/* The node's limits (docs/node.md, --set odbc_*). */
typedef struct sn_odbc_limits {
    int pool;          /* connections per data source (odbc_pool, 8) */
    int queue;         /* statements waiting for a connection, per data source (odbc_queue, 1024) */
    int pools;         /* data sources (distinct connection strings) per node (odbc_pools, 16) */
    long timeout_ms;   /* one statement, cancelled past it (odbc_timeout, 30000); a job may ask less */
    int batch;         /* rows per answer; more come with the next fetch (odbc_batch, 1000) */
    long idle_ms;      /* a transaction or open cursor left idle is rolled back (odbc_idle, 30000) */
    long login_ms;     /* connecting (odbc_login_timeout, 5000) */
    long result_max;   /* bytes of one batch of rows, checked cell by cell (odbc_result_max, 16 MiB) */
    int prepared;      /* statements with parameters kept prepared per connection (odbc_prepared, 16) */
} sn_odbc_limits;

typedef enum {
    SN_ODBC_EXEC,     /* run sql with its parameters; the first batch of rows */
    SN_ODBC_FETCH,    /* the next batch of the session's open result */
    SN_ODBC_BEGIN,    /* a transaction: the session keeps its connection until it ends */
    SN_ODBC_COMMIT,
    SN_ODBC_ROLLBACK,
    SN_ODBC_CLOSE     /* ends the session: commits an open transaction (as STAGE) */
} sn_odbc_op;

typedef enum { SN_ODBC_NULL, SN_ODBC_INT, SN_ODBC_DOUBLE, SN_ODBC_TEXT, SN_ODBC_BLOB } sn_odbc_kind;

/* One parameter or one cell. */
typedef struct sn_odbc_value {
    sn_odbc_kind kind;
    char type; /* parameters: STAGE's type letter ('C', 'i', 'D', ...; 0: from the value) */
    int64_t i;
    double d;
    char *s; /* TEXT and BLOB: s[0..len), NUL-terminated */
    size_t len;
} sn_odbc_value;

/* What a job came to, for its done callback (valid during the callback only). */
typedef struct sn_odbc_result {
    const char *error; /* NULL on success, else why (with SQLSTATE, or the limit hit) */
    int ncols;
    char **names;           /* ncols column labels */
    size_t nrows;           /* rows in this batch */
    sn_odbc_value *cells;   /* nrows * ncols, row-major */
    int more;               /* the result has rows after this batch (SN_ODBC_FETCH gets them) */
    long affected;          /* rows changed, for a statement with no result columns; -1: unknown */
} sn_odbc_result;

/* done: a pool thread, once per submitted job. r == NULL: dropped unrun while the node
 * shut down: free ud and touch nothing else. */
typedef void (*sn_odbc_done)(void *ud, const sn_odbc_result *r);

/* sn_odbc_new: the driver; loop holds pending work while jobs run (so a standalone node
 * waits for them). NULL on failure (logged). Main thread. */
sn_odbc *sn_odbc_new(sn_loop *loop, sn_log *log, const sn_odbc_limits *limits);
/* sn_odbc_destroy: cancels what runs, drops what waits (done with NULL), joins the
 * threads, frees; NULL is fine; nulls *op. Main thread, after the actors' workers stopped. */
void sn_odbc_destroy(sn_odbc **op);
const sn_odbc_limits *sn_odbc_limits_of(sn_odbc *o);
/* sn_odbc_session: a new session id (an adapter): its jobs run one at a time; between
 * BEGIN and COMMIT/ROLLBACK, and while a result has more rows, on one connection. Any thread. */
uint64_t sn_odbc_session(sn_odbc *o);

/* sn_odbc_job_new: a job of session for the data source conn (an ODBC connection string,
 * copied) and sql (copied; may be NULL but for EXEC), nparams parameter slots. NULL on out of
 * memory. Caller owns it until sn_odbc_submit. */
sn_odbc_job *sn_odbc_job_new(sn_odbc_op op, uint64_t session, const char *conn, const char *sql,
                             int nparams, sn_odbc_done done, void *ud);
/* sn_odbc_job_param: parameter i (0-based), copying v's string. SN_OK or SN_ENOMEM. */
int sn_odbc_job_param(sn_odbc_job *j, int i, const sn_odbc_value *v);
/* sn_odbc_job_timeout: this statement's timeout; <= 0 or above the node's keeps the node's. */
void sn_odbc_job_timeout(sn_odbc_job *j, long ms);
void sn_odbc_job_destroy(sn_odbc_job **jp);

/* sn_odbc_submit: queues j on its data source's pool. SN_OK (consumed: done will run), or
 * SN_EFULL with why in err (the pool's queue is full, or too many data sources; logged;
 * caller still owns j). Any thread. */
int sn_odbc_submit(sn_odbc *o, sn_odbc_job *j, char *err, size_t errlen);

#endif
