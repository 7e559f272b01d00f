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

#endif
