/* bench_scripts.h: runs a Lua script in the real stage-node binary next to the benchmark
 * program and reads "key value" lines it prints; the parts of the benchmarks that start
 * nodes (a free port, a script file, a process's CPU time, the median's sort). */
#ifndef SN_BENCH_SCRIPTS_H
#define SN_BENCH_SCRIPTS_H

#include "bench.h"

#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The stage-node binary beside argv0 (the bench programs are built in the same folder). */
static inline void bench_binary(const char *argv0, char *out, size_t cap)
{
    char self[4096];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(out, cap, "%s/stage-node", dirname(self));
}

/* A TCP port on 127.0.0.1 free now (bound, read, closed). Exits on failure. */
static inline int bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bench: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Writes text to a new /tmp/sn-bench-XXXXXX.lua; its name goes to path (cap >= 32); the
 * caller unlinks it. Exits on failure. */
static inline void bench_write_script(const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/sn-bench-XXXXXX.lua");
    int fd = mkstemps(path, 4);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        perror("bench: script");
        exit(1);
    }
    close(fd);
}

/* CPU seconds (user + system) process pid has used, from /proc; 0 when it is gone. */
static inline double bench_proc_cpu(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* qsort's comparison of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs binary with flags on script; returns wall seconds; reads the values of the lines
 * "key1 V" and "key2 V" (either may be NULL) printed by the script. Exits on failure. */
static inline double bench_script(const char *binary, const char *flags, const char *script,
                                  const char *key1, double *v1, const char *key2, double *v2)
{
    char path[64];
    bench_write_script(script, path, sizeof path);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s %s", binary, flags, path);
    double t = bench_now();
    FILE *p = popen(cmd, "r");
    char line[512];
    while (fgets(line, sizeof line, p)) {
        const char *keys[2] = {key1, key2};
        double *vals[2] = {v1, v2};
        for (int i = 0; i < 2; i++) {
            size_t k = keys[i] ? strlen(keys[i]) : 0;
            if (k && strncmp(line, keys[i], k) == 0 && (line[k] == ' ' || line[k] == '\t'))
                *vals[i] = atof(line + k + 1);
        }
    }
    int st = pclose(p);
    t = bench_now() - t;
    unlink(path);
    if (st != 0) {
        fprintf(stderr, "bench: script failed (%s):\n%s\n", flags, script);
        exit(1);
    }
    return t;
}

#endif
