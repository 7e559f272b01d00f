/* HTTP GETs per second through the curl stage (a script in the real binary keeps WIDE
 * requests in flight, each answer starting the next) against a plain libcurl C client (the
 * multi interface, WIDE easy handles reused), both on the same local server in this process
 * (libmicrohttpd, a pool of 2 threads, a 10-byte keep-alive answer). Three runs of each,
 * interleaved; the rows give the median rate, the range, and CPU seconds per 1000 requests
 * of the client side (the node's whole process; the plain client's own thread). */
#include "bench.h"
#include "bench_scripts.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

enum { RUNS = 3 };

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *len, void **state)
{
    (void)cls, (void)url, (void)method, (void)version, (void)data, (void)len, (void)state;
    static const char body[] = "hello curl";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double children_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* The baseline: requests per second; *cpu: CPU seconds of this thread. */
static double plain_client(const char *url, int total, int wide, double *cpu)
{
    CURLM *m = curl_multi_init();
    CURL **e = calloc((size_t)wide, sizeof *e);
    double t0 = bench_now(), c0 = thread_cpu();
    int started = 0, done = 0;
    for (int i = 0; i < wide && started < total; i++, started++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
        curl_multi_add_handle(m, e[i]);
    }
    while (done < total) {
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (msg->data.result != CURLE_OK || status != 200) {
                fprintf(stderr, "bench_curl: plain client: %s, status %ld\n",
                        curl_easy_strerror(msg->data.result), status);
                exit(1);
            }
            done++;
            CURL *h = msg->easy_handle;
            curl_multi_remove_handle(m, h);
            if (started < total) {
                curl_multi_add_handle(m, h);
                started++;
            }
        }
        if (done < total) curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    double rate = total / (bench_now() - t0);
    *cpu = thread_cpu() - c0;
    for (int i = 0; i < wide; i++)
        if (e[i]) {
            curl_multi_remove_handle(m, e[i]);
            curl_easy_cleanup(e[i]);
        }
    free(e);
    curl_multi_cleanup(m);
    return rate;
}

static const char SCRIPT[] =
    "local URL, TOTAL, WIDE = '%s', %d, %d\n"
    "local sent, got, t0 = 0, 0, process.clock\n"
    "local function one() sent = sent + 1 stage.signal('curl:r', URL) end\n"
    "stage.waitfor('r', function (r)\n"
    "  if r.status ~= 200 then error('status ' .. r.status .. ': ' .. r.data.message) end\n"
    "  got = got + 1\n"
    "  if sent < TOTAL then one() end\n"
    "  if got == TOTAL then print('rate ' .. TOTAL / (process.clock - t0)) end\n"
    "end)\n"
    "for i = 1, WIDE do one() end\n";

/* The curl stage: requests per second; *cpu: CPU seconds of the node process. */
static double stage_client(const char *binary, const char *url, int total, int wide, double *cpu)
{
    char script[2048];
    snprintf(script, sizeof script, SCRIPT, url, total, wide);
    double rate = 0, c0 = children_cpu();
    bench_script(binary, "--threads 2 --log-level warn", script, "rate", &rate, NULL, NULL);
    *cpu = children_cpu() - c0;
    if (rate <= 0) {
        fprintf(stderr, "bench_curl: the script printed no rate\n");
        exit(1);
    }
    return rate;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int total = argc > 1 ? atoi(argv[1]) : 20000, wide = 32;
    char binary[4096];
    bench_binary(argv[0], binary, sizeof binary);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0,
                                            NULL, NULL, answer, NULL, MHD_OPTION_THREAD_POOL_SIZE,
                                            2u, MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_END);
    const union MHD_DaemonInfo *info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info) {
        fprintf(stderr, "bench_curl: cannot start the HTTP server\n");
        return 1;
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)info->port);
    double ours[RUNS], base[RUNS], ours_cpu = 0, base_cpu = 0;
    for (int r = 0; r < RUNS; r++) {
        double c;
        base[r] = plain_client(url, total, wide, &c);
        base_cpu += c;
        ours[r] = stage_client(binary, url, total, wide, &c);
        ours_cpu += c;
    }
    qsort(ours, RUNS, sizeof *ours, by_value);
    qsort(base, RUNS, sizeof *base, by_value);
    char name[256];
    snprintf(name, sizeof name,
             "HTTP GETs/s through the curl stage, %d in flight from one "
             "actor, median of %d (range %.0f-%.0f; baseline %.0f-%.0f) (vs a plain libcurl "
             "multi client)",
             wide, RUNS, ours[0], ours[RUNS - 1], base[0], base[RUNS - 1]);
    bench_row("curl", name, ours[RUNS / 2], base[RUNS / 2], "req/s", 0, 0);
    bench_row("curl",
              "CPU seconds per 1000 GETs: the node's process (vs the plain client's "
              "thread)",
              ours_cpu * 1000.0 / (RUNS * (double)total),
              base_cpu * 1000.0 / (RUNS * (double)total), "s", 0, 1);
    MHD_stop_daemon(d);
    curl_global_cleanup();
    return 0;
}
