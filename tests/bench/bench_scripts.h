/* bench_scripts.h: runs a Lua script in the real stage-node binary next to the benchmark
 * program and reads "key value" lines it prints. */
#ifndef SN_BENCH_SCRIPTS_H
#define SN_BENCH_SCRIPTS_H

#include "bench.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The stage-node binary beside argv0 (the bench programs are built in the same folder). */
static inline void bench_binary(const char *argv0, char *out, size_t cap)
{
    char self[4096];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(out, cap, "%s/stage-node", dirname(self));
}

/* Runs binary with flags on script; returns wall seconds; reads the values of the lines
 * "key1 V" and "key2 V" (either may be NULL) printed by the script. Exits on failure. */
static inline double bench_script(const char *binary, const char *flags, const char *script,
                                  const char *key1, double *v1, const char *key2, double *v2)
{
    char path[] = "/tmp/sn-bench-XXXXXX.lua";
    int fd = mkstemps(path, 4);
    if (fd < 0 || write(fd, script, strlen(script)) != (ssize_t)strlen(script)) {
        perror("bench: script");
        exit(1);
    }
    close(fd);
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
