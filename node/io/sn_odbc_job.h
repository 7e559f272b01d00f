/* sn_odbc_job: a statement job's data (SQL, bound parameters, the answer's route) and the
 * conversions between sn_odbc_value and ODBC's C types, both ways; private to node/io's
 * odbc (sn_odbc.c runs the jobs on its pool threads). */
#ifndef SN_ODBC_JOB_H
#define SN_ODBC_JOB_H

#include "sn_odbc.h"

#include <sql.h>
#include <sqlext.h>

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

/* Binds j's parameters to st, ind[i] their indicators (kept alive until SQLExecute). 1 on
 * success, 0 when the driver refused one (its diagnostics are on st). */
int sn_odbc_bind_params(SQLHSTMT st, sn_odbc_job *j, SQLLEN *ind);

/* One cell: column col of st's current row, read as its column's kind sqlt into *v, in at
 * most budget bytes: 1, or 0 (the driver failed), CELL_NOMEM, CELL_OVER. */
enum { CELL_NOMEM = -1, CELL_OVER = -2 };
int sn_odbc_get_cell(SQLHSTMT st, int col, SQLSMALLINT sqlt, sn_odbc_value *v, size_t budget);

#endif
