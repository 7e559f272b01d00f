/* sn_statuscli: the `stage-node status` command: fetches /status.json from a node over HTTP/1.0
 * and prints the cluster view (nodes, stages x nodes, last errors) as aligned terminal tables. */
#ifndef SN_STATUSCLI_H
#define SN_STATUSCLI_H

#include <stdio.h>

/* The whole exchange (connect, request, response) must finish within this. */
#define SN_STATUSCLI_TIMEOUT_MS 5000
/* A larger response is refused. */
#define SN_STATUSCLI_MAX_RESPONSE (16u << 20)

/* sn_status_cli: GET http://hostport/status.json and print the tables to out. 0 on success;
 * 1 after one line "status: ..." on err (bad address, cannot connect, timeout, HTTP status
 * other than 200, invalid JSON). Blocking; any thread; SIGPIPE is never raised. */
int sn_status_cli(const char *hostport, FILE *out, FILE *err);

#endif
