/* lua_broker_addr: broker.ntoa, broker.aton and broker.ifaddr, STAGE's address helpers:
 * addresses are sockaddr bytes in Lua strings (no sockets, no broker state); and which node a
 * socket id belongs to (sn_lua_broker_owner: the member list, cached per state). */
#include "lua_broker_addr.h"
#include "lua_host.h"
#include "sn_cluster.h"
#include "sn_node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <lauxlib.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* broker.ntoa(addr [, t]) */
int sn_lua_broker_ntoa(lua_State *L)
{
    size_t al;
    const char *a = luaL_checklstring(L, 1, &al);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, a, al < sizeof ss ? al : sizeof ss);
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
        port = ntohs(in->sin6_port);
    } else {
        return 0;
    }
    if (lua_istable(L, 2)) {
        lua_pushvalue(L, 2);
        lua_pushinteger(L, ss.ss_family);
        lua_setfield(L, -2, "family");
        lua_pushstring(L, host);
        lua_setfield(L, -2, "addr");
        lua_pushinteger(L, port);
        lua_setfield(L, -2, "port");
        if (ss.ss_family == AF_INET6) {
            lua_pushinteger(L, ((struct sockaddr_in6 *)&ss)->sin6_scope_id);
            lua_setfield(L, -2, "scope_id");
        }
        return 1;
    }
    lua_pushfstring(L, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
    return 1;
}

/* broker.aton("host:port" | "udp://host:port" | family [, t]): an address (with t: a list
 * of every address the name resolves to; with a family or an address and t, t's addr, port,
 * scope_id applied). */
int sn_lua_broker_aton(lua_State *L)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    size_t al = 0;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        ss.ss_family = (sa_family_t)lua_tointeger(L, 1);
        al = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    } else {
        const char *s = luaL_checklstring(L, 1, &al);
        int binary = al && (unsigned char)s[0] < ' ';
        if (binary) {
            memcpy(&ss, s, al < sizeof ss ? al : sizeof ss);
        } else {
            const char *p = strstr(s, "://");
            int dgram = p && !strncmp(s, "udp", 3);
            p = p ? p + 3 : s;
            char host[256], port[16] = "";
            const char *c = strrchr(p, ':');
            size_t hl = c ? (size_t)(c - p) : strlen(p);
            if (hl >= sizeof host)
                return 0;
            memcpy(host, p, hl);
            host[hl] = 0;
            if (c)
                snprintf(port, sizeof port, "%s", c + 1);
            char *h = host;
            if (h[0] == '[') {
                h++;
                char *e = strchr(h, ']');
                if (e)
                    *e = 0;
            }
            struct addrinfo hints = {.ai_socktype = dgram ? SOCK_DGRAM : SOCK_STREAM,
                                     .ai_flags = AI_PASSIVE}, *ai;
            if (getaddrinfo(h[0] ? h : NULL, port[0] ? port : NULL, &hints, &ai))
                return 0;
            if (lua_istable(L, 2)) {
                lua_newtable(L);
                int i = 0;
                for (struct addrinfo *x = ai; x; x = x->ai_next) {
                    lua_pushlstring(L, (const char *)x->ai_addr, x->ai_addrlen);
                    lua_rawseti(L, -2, ++i);
                }
                freeaddrinfo(ai);
                return 1;
            }
            lua_pushlstring(L, (const char *)ai->ai_addr, ai->ai_addrlen);
            freeaddrinfo(ai);
            return 1;
        }
    }
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "port");
        lua_getfield(L, 2, "addr");
        int port = (int)lua_tointeger(L, -2);
        const char *addr = lua_tostring(L, -1);
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
            if (!lua_isnil(L, -2))
                in->sin6_port = htons((uint16_t)port);
            if (addr)
                inet_pton(AF_INET6, addr, &in->sin6_addr);
            lua_getfield(L, 2, "scope_id");
            if (!lua_isnil(L, -1))
                in->sin6_scope_id = (uint32_t)lua_tointeger(L, -1);
        } else {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            if (!lua_isnil(L, -2))
                in->sin_port = htons((uint16_t)port);
            if (addr)
                inet_pton(AF_INET, addr, &in->sin_addr);
        }
    }
    lua_pushlstring(L, (const char *)&ss, al);
    return 1;
}

/* broker.ifaddr([name]): {device = {addr, ...}} of the interfaces up (loopback left out). */
int sn_lua_broker_ifaddr(lua_State *L)
{
    const char *want = luaL_optstring(L, 1, "");
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa) < 0)
        return luaL_error(L, "broker.ifaddr: %s", strerror(errno));
    lua_newtable(L);
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP) ||
            (want[0] && !strstr(i->ifa_name, want)))
            continue;
        size_t al = i->ifa_addr->sa_family == AF_INET    ? sizeof(struct sockaddr_in)
                    : i->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : 0;
        if (!al)
            continue;
        if (lua_getfield(L, -1, i->ifa_name) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, i->ifa_name);
        }
        lua_pushlstring(L, (const char *)i->ifa_addr, al);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 1);
    }
    freeifaddrs(ifa);
    return 1;
}

static const char K_NODES = 0; /* tag -> node name, learned from the member list */

int sn_lua_broker_owner(lua_State *L, sn_broker *b, lua_Integer id, int fresh, char *out,
                        size_t cap)
{
    sn_lua_host *h = sn_lua_host_of(L);
    uint32_t tag = sn_broker_id_tag((uint64_t)id);
    if (b && tag == sn_broker_tag(b))
        return 0;
    if (!h->ctx || !h->ctx->cluster)
        return -1;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_NODES) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &K_NODES);
    }
    int nodes = lua_gettop(L);
    if (!fresh && lua_rawgeti(L, nodes, tag) == LUA_TSTRING) {
        snprintf(out, cap, "%s", lua_tostring(L, -1));
        lua_settop(L, nodes - 1);
        return 1;
    }
    sn_member_view *v = NULL;
    size_t n = sn_cluster_members(h->ctx->cluster, &v);
    int found = -1;
    for (size_t i = 0; i < n; i++)
        if (sn_broker_tag_of(v[i].name) == tag && !strcmp(v[i].state, "alive")) {
            snprintf(out, cap, "%s", v[i].name);
            found = 1;
            break;
        }
    sn_cluster_members_free(v, n);
    if (found > 0)
        lua_pushstring(L, out);
    else
        lua_pushnil(L);
    lua_rawseti(L, nodes, tag);
    lua_settop(L, nodes - 1);
    return found;
}
