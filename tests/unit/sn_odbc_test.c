/* sn_odbc: jobs run on a pool's threads against a real SQLite database (libsqlite3odbc, a
 * file under /tmp); parameters are bound; results come in batches; a transaction keeps its
 * connection and rolls back; a statement past its timeout is cancelled; a full queue refuses
 * at submit, and so do too many data sources; a batch over its byte limit fails; a session
 * left idle in a transaction is rolled back; destroy cancels what runs and drops what waits
 * (done with NULL). */
#include "sn_error.h"
#include "sn_loop.h"
#include "sn_odbc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sn_log *log_;
static sn_loop *loop;
static char conn[256], path[128];

#define SLOW                                                                                       \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "        \
    "SELECT count(*) FROM c"

typedef struct got {
    int calls, dropped, more, ncols;
    long affected;
    size_t nrows;
    char error[512];
    char cells[8][64];
} got;

static void done(void *ud, const sn_odbc_result *r)
{
    got *g = ud;
    g->calls++;
    if (!r) {
        g->dropped++;
        return;
    }
    snprintf(g->error, sizeof g->error, "%s", r->error ? r->error : "");
    g->more = r->more;
    g->ncols = r->ncols;
    g->nrows = r->nrows;
    g->affected = r->affected;
    for (size_t i = 0; i < r->nrows * (size_t)r->ncols && i < 8; i++) {
        const sn_odbc_value *v = &r->cells[i];
        if (v->kind == SN_ODBC_INT)
            snprintf(g->cells[i], sizeof g->cells[i], "%lld", (long long)v->i);
        else if (v->kind == SN_ODBC_TEXT)
            snprintf(g->cells[i], sizeof g->cells[i], "'%s'", v->s);
        else if (v->kind == SN_ODBC_NULL)
            snprintf(g->cells[i], sizeof g->cells[i], "NULL");
        else
            snprintf(g->cells[i], sizeof g->cells[i], "%g", v->d);
    }
}

static void setup(void)
{
    log_ = sn_log_new(stderr, SN_LOG_ERROR);
    loop = sn_loop_new(log_);
    snprintf(path, sizeof path, "/tmp/sn_odbc_test.%d.db", (int)getpid());
    unlink(path);
    snprintf(conn, sizeof conn, "DRIVER=SQLite3;Database=%s", path);
}

static void teardown(void)
{
    sn_loop_destroy(&loop);
    sn_log_destroy(&log_);
    unlink(path);
}

TestSuite(sn_odbc, .init = setup, .fini = teardown);

static sn_odbc_limits limits(int pool, int queue, int batch, long timeout_ms)
{
    sn_odbc_limits lim = {.pool = pool, .queue = queue, .pools = 4, .timeout_ms = timeout_ms,
                          .batch = batch, .idle_ms = 5000, .login_ms = 2000,
                          .result_max = 1 << 20};
    return lim;
}

static sn_odbc *driver(int pool, int queue, int batch, long timeout_ms)
{
    sn_odbc_limits lim = limits(pool, queue, batch, timeout_ms);
    sn_odbc *o = sn_odbc_new(loop, log_, &lim);
    cr_assert(o);
    return o;
}

/* Submits op with the integer parameters ints[0..n) and waits for its done. */
static void job(sn_odbc *o, sn_odbc_op op, uint64_t session, const char *sql, const long *ints,
                int n, got *g)
{
    memset(g, 0, sizeof *g);
    sn_odbc_job *j = sn_odbc_job_new(op, session, conn, sql, n, done, g);
    cr_assert(j);
    for (int i = 0; i < n; i++) {
        sn_odbc_value v = {.kind = SN_ODBC_INT, .i = ints[i]};
        cr_assert_eq(sn_odbc_job_param(j, i, &v), SN_OK);
    }
    char err[256];
    cr_assert_eq(sn_odbc_submit(o, j, err, sizeof err), SN_OK);
    sn_loop_run(loop); /* returns once the job is done: it held the loop's pending work */
    cr_assert_eq(g->calls, 1);
}

Test(sn_odbc, bound_parameters_and_batches)
{
    sn_odbc *o = driver(2, 16, 2, 5000);
    got g;
    job(o, SN_ODBC_EXEC, 0, "CREATE TABLE t (k INTEGER, v TEXT)", NULL, 0, &g);
    cr_assert_str_eq(g.error, "");
    sn_odbc_job *j = sn_odbc_job_new(SN_ODBC_EXEC, 0, conn, "INSERT INTO t VALUES (?, ?)", 2,
                                     done, &g);
    sn_odbc_value k = {.kind = SN_ODBC_INT, .i = 1};
    sn_odbc_value v = {.kind = SN_ODBC_TEXT, .s = "it's'); DROP TABLE t; --", .len = 24};
    sn_odbc_job_param(j, 0, &k);
    sn_odbc_job_param(j, 1, &v);
    char err[256];
    memset(&g, 0, sizeof g);
    cr_assert_eq(sn_odbc_submit(o, j, err, sizeof err), SN_OK);
    sn_loop_run(loop);
    cr_assert_str_eq(g.error, "");
    cr_assert_eq(g.affected, 1);
    long two[] = {2, 3};
    job(o, SN_ODBC_EXEC, 0, "INSERT INTO t (k) VALUES (?), (?)", two, 2, &g);
    uint64_t s = sn_odbc_session(o);
    job(o, SN_ODBC_EXEC, s, "SELECT k, v FROM t ORDER BY k", NULL, 0, &g);
    cr_assert_str_eq(g.error, "");
    cr_assert_eq(g.ncols, 2);
    cr_assert_eq(g.nrows, 2);
    cr_assert(g.more);
    cr_assert_str_eq(g.cells[0], "1");
    cr_assert_str_eq(g.cells[1], "'it's'); DROP TABLE t; --'");
    cr_assert_str_eq(g.cells[3], "NULL");
    job(o, SN_ODBC_FETCH, s, NULL, NULL, 0, &g); /* the open result, on the same connection */
    cr_assert_str_eq(g.error, "");
    cr_assert_eq(g.nrows, 1);
    cr_assert(!g.more);
    cr_assert_str_eq(g.cells[0], "3");
    job(o, SN_ODBC_FETCH, s, NULL, NULL, 0, &g);
    cr_assert(strstr(g.error, "the result set is closed"), "%s", g.error);
    sn_odbc_destroy(&o);
    cr_assert_null(o);
}

Test(sn_odbc, a_transaction_rolls_back)
{
    sn_odbc *o = driver(2, 16, 100, 5000);
    got g;
    job(o, SN_ODBC_EXEC, 0, "CREATE TABLE t (k INTEGER)", NULL, 0, &g);
    uint64_t s = sn_odbc_session(o);
    job(o, SN_ODBC_BEGIN, s, NULL, NULL, 0, &g);
    cr_assert_str_eq(g.error, "");
    long one = 1;
    job(o, SN_ODBC_EXEC, s, "INSERT INTO t VALUES (?)", &one, 1, &g);
    job(o, SN_ODBC_EXEC, s, "SELECT count(*) FROM t", NULL, 0, &g);
    cr_assert_str_eq(g.cells[0], "1");
    job(o, SN_ODBC_ROLLBACK, s, NULL, NULL, 0, &g);
    cr_assert_str_eq(g.error, "");
    job(o, SN_ODBC_EXEC, 0, "SELECT count(*) FROM t", NULL, 0, &g);
    cr_assert_str_eq(g.cells[0], "0");
    job(o, SN_ODBC_COMMIT, s, NULL, NULL, 0, &g);
    cr_assert(strstr(g.error, "no transaction is open"), "%s", g.error);
    sn_odbc_destroy(&o);
}

Test(sn_odbc, a_statement_past_its_timeout_is_cancelled)
{
    sn_odbc *o = driver(1, 16, 100, 300);
    got g;
    job(o, SN_ODBC_EXEC, 0, SLOW, NULL, 0, &g);
    cr_assert(strstr(g.error, "timeout: the statement ran past its limit"), "%s", g.error);
    job(o, SN_ODBC_EXEC, 0, "SELECT 7", NULL, 0, &g); /* the connection goes on */
    cr_assert_str_eq(g.cells[0], "7");
    sn_odbc_destroy(&o);
}

Test(sn_odbc, a_full_queue_refuses_and_destroy_drops_what_waits)
{
    sn_odbc *o = driver(1, 1, 100, 60000);
    got slow = {0}, queued = {0};
    char err[256];
    sn_odbc_job *j = sn_odbc_job_new(SN_ODBC_EXEC, 0, conn, SLOW, 0, done, &slow);
    cr_assert_eq(sn_odbc_submit(o, j, err, sizeof err), SN_OK);
    usleep(200 * 1000); /* the one connection runs it */
    j = sn_odbc_job_new(SN_ODBC_EXEC, 0, conn, "SELECT 1", 0, done, &queued);
    cr_assert_eq(sn_odbc_submit(o, j, err, sizeof err), SN_OK);
    sn_odbc_job *k = sn_odbc_job_new(SN_ODBC_EXEC, 0, conn, "SELECT 2", 0, done, &queued);
    cr_assert_eq(sn_odbc_submit(o, k, err, sizeof err), SN_EFULL);
    cr_assert(strstr(err, "the pool is exhausted"), "%s", err);
    sn_odbc_job_destroy(&k);
    sn_odbc_destroy(&o); /* cancels the slow one, drops the queued one */
    cr_assert_eq(slow.calls, 1);
    cr_assert(strstr(slow.error, "cancelled"), "%s", slow.error);
    cr_assert_eq(queued.calls, 1);
    cr_assert_eq(queued.dropped, 1);
}

Test(sn_odbc, a_batch_over_its_byte_limit_fails)
{
    sn_odbc_limits lim = limits(1, 16, 100, 5000);
    lim.result_max = 4096;
    sn_odbc *o = sn_odbc_new(loop, log_, &lim);
    got g;
    job(o, SN_ODBC_EXEC, 0, "SELECT zeroblob(3000) AS a, 'x' AS b", NULL, 0, &g);
    cr_assert_str_eq(g.error, "");
    job(o, SN_ODBC_EXEC, 0, "SELECT hex(zeroblob(5000)) AS a", NULL, 0, &g);
    cr_assert(strstr(g.error, "limit hit: a batch of rows over 4096 bytes (odbc_result_max"),
              "%s", g.error);
    job(o, SN_ODBC_EXEC, 0,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) "
        "SELECT hex(zeroblob(50)) FROM c",
        NULL, 0, &g);
    cr_assert(strstr(g.error, "odbc_result_max"), "%s", g.error);
    job(o, SN_ODBC_EXEC, 0, "SELECT 5", NULL, 0, &g);
    cr_assert_str_eq(g.cells[0], "5");
    sn_odbc_destroy(&o);
}

Test(sn_odbc, too_many_data_sources_refuse)
{
    sn_odbc_limits lim = limits(1, 16, 100, 5000);
    lim.pools = 1;
    sn_odbc *o = sn_odbc_new(loop, log_, &lim);
    got g;
    job(o, SN_ODBC_EXEC, 0, "SELECT 1", NULL, 0, &g);
    char err[256];
    sn_odbc_job *j =
        sn_odbc_job_new(SN_ODBC_EXEC, 0, "DRIVER=SQLite3;Database=:memory:", "SELECT 1", 0, done, &g);
    cr_assert_eq(sn_odbc_submit(o, j, err, sizeof err), SN_EFULL);
    cr_assert_str_eq(err, "too many data sources (odbc_pools = 1)");
    sn_odbc_job_destroy(&j);
    sn_odbc_destroy(&o);
}

Test(sn_odbc, a_session_left_idle_in_a_transaction_is_rolled_back)
{
    sn_odbc_limits lim = limits(1, 16, 100, 5000);
    lim.idle_ms = 200;
    sn_odbc *o = sn_odbc_new(loop, log_, &lim);
    got g;
    job(o, SN_ODBC_EXEC, 0, "CREATE TABLE t (k INTEGER)", NULL, 0, &g);
    uint64_t s = sn_odbc_session(o);
    job(o, SN_ODBC_BEGIN, s, NULL, NULL, 0, &g);
    long one = 1;
    job(o, SN_ODBC_EXEC, s, "INSERT INTO t VALUES (?)", &one, 1, &g);
    usleep(600 * 1000);
    /* the one connection serves others again, and the insert is gone */
    job(o, SN_ODBC_EXEC, 0, "SELECT count(*) FROM t", NULL, 0, &g);
    cr_assert_str_eq(g.cells[0], "0");
    job(o, SN_ODBC_COMMIT, s, NULL, NULL, 0, &g);
    cr_assert(strstr(g.error, "no transaction is open"), "%s", g.error);
    sn_odbc_destroy(&o);
}
