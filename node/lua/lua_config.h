/* lua_config: the --config file: a Lua file returning a table of the command line's
 * settings, turned into the equivalent options so that one parser checks both. */
#ifndef SN_LUA_CONFIG_H
#define SN_LUA_CONFIG_H

#include <stddef.h>

/* sn_config_argv: runs the config file at path (in a bare state with only the base,
 * string and table libraries) and writes the options it stands for as an argv-style list:
 * *argv (caller owns it: sn_config_free) with *argc entries: *nflags option words, then
 * the script and its arguments, if any. SN_OK, or SN_ENOENT / SN_EINVAL / SN_ENOMEM with a
 * message naming the file and the setting in err. */
int sn_config_argv(const char *path, char ***argv, int *argc, int *nflags, char *err,
                   size_t errlen);
/* sn_config_free: frees what sn_config_argv made. */
void sn_config_free(char **argv, int argc);

/* sn_config_is_json: path is a STAGE stage.json (a .json name, or content that starts with
 * '{'). sn_config_argv then maps its #startup, #threads, #cluster, %package and %preload
 * (docs/node.md) and names each key it ignores, with why, in a warning on stderr. */
int sn_config_is_json(const char *path);
/* sn_config_cluster_listen: the --listen to use after parsing. When listen is the word
 * a stage.json's "#cluster" port made (argv[0..nflags) of sn_config_argv) and secured (a
 * --curve-secret or --insecure) is 0, returns NULL: the node runs alone, with one warning
 * on stderr naming the port, why and the fix. Otherwise returns listen (a --listen of the
 * command line or of a Lua config keeps the refusal without keys); warns that a port it
 * opens listens on loopback only. */
const char *sn_config_cluster_listen(const char *path, char *const *argv, int nflags,
                                     const char *listen, int secured);

struct lua_State;
/* sn_config_push_stage: pushes the settings of Lua stage sid from the stage.json at path
 * (its module's section merged with its own: what STAGE's process["$"] shows), or an empty
 * table when path is NULL, not JSON or unreadable. Any thread; reads the file each call. */
void sn_config_push_stage(struct lua_State *L, const char *path, const char *sid);

#endif
