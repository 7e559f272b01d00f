/* sn_actor: one actor: a stage id, a name, and its own lua_State (lua-api.md vocabulary).
 * An actor runs on one thread at a time; the node owns every actor. */
#ifndef SN_ACTOR_H
#define SN_ACTOR_H

#include "sn_log.h"

typedef struct sn_actor sn_actor;

/* What an actor needs from its node; copied, so the caller's strings may go away. */
typedef struct sn_actor_conf {
    const char *stage;     /* stage id, e.g. "main" */
    const char *name;      /* unique actor name, e.g. "main" */
    const char *node_name; /* process.name */
    const char *preload;   /* folder of preload files */
    int preload_required;  /* 1 when the user named the folder: it must exist */
    const char *script;    /* process.args[0] */
    char *const *args;     /* process.args[1..] (kept by reference: argv lives long) */
    int nargs;
    double start;          /* node start, monotonic seconds */
    sn_log *log;
} sn_actor_conf;

/* sn_actor_new: creates the actor's state and runs the preload files. Returns NULL and
 * sets *err (SN_ENOMEM, SN_ENOENT, SN_ELUA; already logged) on failure. Caller owns it. */
sn_actor *sn_actor_new(const sn_actor_conf *conf, int *err);
/* sn_actor_destroy: closes the state and frees the actor; NULL is fine; nulls *ap. */
void sn_actor_destroy(sn_actor **ap);

/* sn_actor_run_file: runs a script file as the actor's top-level chunk. SN_OK, or
 * SN_ENOENT / SN_ELUA (logged with file:line and a traceback). */
int sn_actor_run_file(sn_actor *a, const char *path);

/* sn_actor_name: the actor's name, as given. */
const char *sn_actor_name(const sn_actor *a);

#endif
