/* sn_curve: key files, allow lists, endpoint classification and the bytecode trust rule. */
#include "sn_curve.h"
#include "sn_error.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sn_curve_test.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static char *path_in_tmp(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    static char buf[1024];
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

TestSuite(sn_curve, .init = make_tmpdir, .fini = remove_tmpdir);

Test(sn_curve, has_curve)
{
    cr_assert(zmq_has("curve"), "libzmq without CURVE: the security tests cannot run");
}

Test(sn_curve, keygen_round_trip)
{
    char err[256] = "";
    const char *key = path_in_tmp("node.key");
    cr_assert_eq(sn_curve_keygen(key, err, sizeof err), SN_OK, "%s", err);

    struct stat st;
    cr_assert_eq(stat(key, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "secret mode %o", st.st_mode & 0777);
    char pub_path[600];
    snprintf(pub_path, sizeof pub_path, "%s.pub", key);
    cr_assert_eq(stat(pub_path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644, "public mode %o", st.st_mode & 0777);

    char pub[64];
    snprintf(pub, sizeof pub, "%s", read_text(pub_path));
    cr_assert_eq(strlen(pub), SN_CURVE_Z85_LEN + 1, "pub file: '%s'", pub);
    cr_assert_eq(pub[SN_CURVE_Z85_LEN], '\n');
    pub[SN_CURVE_Z85_LEN] = '\0';

    sn_curve_keys *k = NULL;
    cr_assert_eq(sn_curve_keys_load(key, &k, err, sizeof err), SN_OK, "%s", err);
    cr_assert_str_eq(sn_curve_keys_public(k), pub);

    /* The .pub file plus a node name is an allow line; the bare key is not (no name). */
    sn_curve_allow *a = NULL;
    cr_assert_eq(sn_curve_allow_load(pub_path, &a, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, ":1: a key without a node name"), "%s", err);
    char line[128];
    snprintf(line, sizeof line, "%s n1\n", pub);
    cr_assert_eq(sn_curve_allow_parse(line, strlen(line), "allow", &a, err, sizeof err), SN_OK,
                 "%s", err);
    cr_assert_eq(sn_curve_allow_count(a), 1);
    cr_assert(sn_curve_allow_has_z85(a, pub));
    sn_curve_allow_destroy(&a);
    cr_assert_null(a);

    sn_curve_allow *self = NULL;
    cr_assert_eq(sn_curve_allow_of_keys(k, "self", &self), SN_OK);
    cr_assert(sn_curve_allow_has_z85(self, pub));
    sn_curve_allow_destroy(&self);

    sn_curve_keys_destroy(&k);
    cr_assert_null(k);
    sn_curve_keys_destroy(&k); /* NULL is fine */
}

Test(sn_curve, keygen_refuses_overwrite)
{
    char err[256] = "";
    const char *key = path_in_tmp("a.key");
    cr_assert_eq(sn_curve_keygen(key, err, sizeof err), SN_OK, "%s", err);
    char before[1024];
    snprintf(before, sizeof before, "%s", read_text(key));

    cr_assert_eq(sn_curve_keygen(key, err, sizeof err), SN_EINVAL);
    char want[600];
    snprintf(want, sizeof want, "%s exists", key);
    cr_assert_str_eq(err, want);
    cr_assert_str_eq(read_text(key), before, "the secret was overwritten");

    /* Only the .pub exists: still refused, and no secret file is left behind. */
    const char *b = path_in_tmp("b.key");
    char bpub[600];
    snprintf(bpub, sizeof bpub, "%s.pub", b);
    write_text(bpub, "old\n");
    cr_assert_eq(sn_curve_keygen(b, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "b.key.pub exists"), "%s", err);
    cr_assert_neq(access(b, F_OK), 0);
    cr_assert_str_eq(read_text(bpub), "old\n");

    /* A directory that does not exist: an I/O error naming the file. */
    cr_assert_eq(sn_curve_keygen(path_in_tmp("nodir/c.key"), err, sizeof err), SN_EIO);
    cr_assert(strstr(err, "nodir/c.key"), "%s", err);
}

Test(sn_curve, keygen_mode_ignores_umask)
{
    char err[256];
    mode_t old = umask(0);
    const char *key = path_in_tmp("u.key");
    int rc = sn_curve_keygen(key, err, sizeof err);
    umask(old);
    cr_assert_eq(rc, SN_OK, "%s", err);
    struct stat st;
    cr_assert_eq(stat(key, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
}

/* Loads text written to a file; returns the code and leaves the message in err. */
static int load_keys_text(const char *text, char *err, size_t errlen)
{
    const char *p = path_in_tmp("bad.key");
    unlink(p);
    write_text(p, text);
    sn_curve_keys *k = NULL;
    int rc = sn_curve_keys_load(p, &k, err, errlen);
    if (rc == SN_OK)
        cr_assert_not_null(k);
    else
        cr_assert_null(k);
    sn_curve_keys_destroy(&k);
    return rc;
}

Test(sn_curve, bad_key_files)
{
    char err[512];
    char pub[41], sec[41], pub2[41], sec2[41];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    cr_assert_eq(zmq_curve_keypair(pub2, sec2), 0);
    char text[512];

    sn_curve_keys *k = NULL;
    cr_assert_eq(sn_curve_keys_load(path_in_tmp("missing.key"), &k, err, sizeof err), SN_ENOENT);
    cr_assert(strstr(err, "missing.key") && strstr(err, "No such file"), "%s", err);

    snprintf(text, sizeof text, "# comment\n\npublic-key = %s\n  secret-key=%s  \n", pub, sec);
    cr_assert_eq(load_keys_text(text, err, sizeof err), SN_OK, "%s", err);

    snprintf(text, sizeof text, "public-key = %s\n", pub);
    cr_assert_eq(load_keys_text(text, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "no secret-key"), "%s", err);

    cr_assert_eq(load_keys_text(pub, err, sizeof err), SN_EINVAL); /* a .pub given by mistake */
    cr_assert(strstr(err, "bad.key:1: expected"), "%s", err);

    snprintf(text, sizeof text, "public-key = %s\nsecret-key = %.39s\n", pub, sec);
    cr_assert_eq(load_keys_text(text, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "bad.key:2: secret-key is not 40 characters of Z85"), "%s", err);

    snprintf(text, sizeof text, "public-key = %.39s~\nsecret-key = %s\n", pub, sec);
    cr_assert_eq(load_keys_text(text, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "bad.key:1: public-key is not 40 characters of Z85"), "%s", err);

    snprintf(text, sizeof text, "public-key = %s\nsecret-key = %s\n", pub2, sec);
    cr_assert_eq(load_keys_text(text, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "does not belong"), "%s", err);

    snprintf(text, sizeof text, "public-key = %s\nsecret-key = %s\nsecret-key = %s\n", pub, sec,
             sec);
    cr_assert_eq(load_keys_text(text, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "bad.key:3: secret-key given twice"), "%s", err);

    cr_assert_eq(load_keys_text("", err, sizeof err), SN_EINVAL);
    /* "#####" decodes past 32 bits: not canonical Z85, not a key. */
    snprintf(text, sizeof text, "public-key = %s\nsecret-key = #####%.35s\n", pub, sec);
    cr_assert_eq(load_keys_text(text, err, sizeof err), SN_EINVAL);

    sn_curve_keys *fromz = NULL;
    cr_assert_eq(sn_curve_keys_from_z85(sec, &fromz), SN_OK);
    cr_assert_str_eq(sn_curve_keys_public(fromz), pub);
    sn_curve_keys_destroy(&fromz);
    cr_assert_eq(sn_curve_keys_from_z85("short", &fromz), SN_EINVAL);
    cr_assert_null(fromz);
}

Test(sn_curve, allow_file_parsing)
{
    char pub[3][41], sec[41];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(zmq_curve_keypair(pub[i], sec), 0);
    char text[1024], err[1024];
    snprintf(text, sizeof text,
             "# cluster keys\n"
             "%s n1\n"
             "\n"
             "   %s   n1 # new key (rotation)\r\n"
             "%s n1\n" /* duplicate: counted once */
             "  # indented comment\n",
             pub[0], pub[1], pub[0]);
    sn_curve_allow *a = NULL;
    cr_assert_eq(sn_curve_allow_parse(text, strlen(text), "allow", &a, err, sizeof err), SN_OK,
                 "%s", err);
    cr_assert_eq(sn_curve_allow_count(a), 2);
    cr_assert(sn_curve_allow_has_z85(a, pub[0]));
    cr_assert(sn_curve_allow_has_z85(a, pub[1]));
    cr_assert_not(sn_curve_allow_has_z85(a, pub[2]));
    cr_assert_not(sn_curve_allow_has_z85(a, "not a key"));
    cr_assert_not(sn_curve_allow_has_z85(a, NULL));
    /* names: the key that authenticates as n1 is the one listed last (the rotation's new one) */
    uint8_t key[SN_CURVE_KEY_LEN], want[SN_CURVE_KEY_LEN];
    cr_assert_eq(sn_curve_allow_key_of(a, "n1", key), SN_OK);
    cr_assert_not_null(zmq_z85_decode(want, pub[1]));
    cr_assert_eq(memcmp(key, want, sizeof key), 0);
    cr_assert_str_eq(sn_curve_allow_name(a, want), "n1");
    cr_assert_eq(sn_curve_allow_key_of(a, "n2", key), SN_ENOENT);
    cr_assert_eq(sn_curve_allow_key_of(a, NULL, key), SN_ENOENT);
    sn_curve_allow_destroy(&a);

    /* Every bad line is named; the whole file is refused. */
    snprintf(text, sizeof text,
             "%s n1\n"
             "%.39s n2\n"    /* line 2: too short */
             "%s n2 extra\n" /* line 3: three words */
             "# fine\n"
             "%.39s\" n3\n" /* line 5: not Z85 */
             "%s\n"          /* line 6: no name */
             "%s n/1\n"      /* line 7: not a name */
             "%s n9\n",      /* line 8: line 1's key for another node */
             pub[0], pub[1], pub[1], pub[2], pub[2], pub[2], pub[0]);
    cr_assert_eq(sn_curve_allow_parse(text, strlen(text), "allow.keys", &a, err, sizeof err),
                 SN_EINVAL);
    cr_assert_null(a);
    cr_assert(strstr(err, "allow.keys:2: not a 40-character Z85 public key"), "%s", err);
    cr_assert(strstr(err, "allow.keys:3: one key and one name per line"), "%s", err);
    cr_assert(strstr(err, "allow.keys:5: not a 40-character Z85 public key"), "%s", err);
    cr_assert(strstr(err, "allow.keys:6: a key without a node name"), "%s", err);
    cr_assert(strstr(err, "allow.keys:7: not a node name"), "%s", err);
    cr_assert_null(strstr(err, "allow.keys:1:"), "%s", err);
    snprintf(text, sizeof text, "%s n1\n%s n9\n", pub[0], pub[0]);
    cr_assert_eq(sn_curve_allow_parse(text, strlen(text), "dup", &a, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "dup:2: key already listed for node n1 (line 1)"), "%s", err);

    /* A short error buffer ends with "..." rather than cutting silently. */
    char small[48];
    cr_assert_eq(sn_curve_allow_parse(text, strlen(text), "allow.keys", &a, small, sizeof small),
                 SN_EINVAL);
    cr_assert_eq(strlen(small), sizeof small - 1);
    cr_assert_str_eq(small + strlen(small) - 3, "...");

    /* Empty: nobody could connect, which is an operator mistake. */
    cr_assert_eq(sn_curve_allow_parse("# none\n\n", 8, "empty", &a, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "empty: no keys"), "%s", err);

    /* Missing file. */
    cr_assert_eq(sn_curve_allow_load(path_in_tmp("nope"), &a, err, sizeof err), SN_ENOENT);
    cr_assert(strstr(err, "nope"), "%s", err);
}

Test(sn_curve, allow_file_limit)
{
    size_t per = SN_CURVE_Z85_LEN + 3; /* "KEY n\n" */
    size_t n = SN_CURVE_ALLOW_MAX + 1;
    char *text = malloc(n * per + 1);
    cr_assert_not_null(text);
    char pub[41], sec[41];
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
        memcpy(text + i * per, pub, SN_CURVE_Z85_LEN);
        memcpy(text + i * per + SN_CURVE_Z85_LEN, " n\n", 3);
    }
    text[n * per] = '\0';
    char err[256];
    sn_curve_allow *a = NULL;
    /* Exactly the limit is fine. */
    cr_assert_eq(sn_curve_allow_parse(text, (n - 1) * per, "big", &a, err, sizeof err), SN_OK, "%s",
                 err);
    cr_assert_eq(sn_curve_allow_count(a), SN_CURVE_ALLOW_MAX);
    sn_curve_allow_destroy(&a);
    cr_assert_eq(sn_curve_allow_parse(text, n * per, "big", &a, err, sizeof err), SN_ELIMIT);
    cr_assert_str_eq(err, "big: more than 10000 keys");
    cr_assert_null(a);
    free(text);
}

Test(sn_curve, loopback_table)
{
    static const struct {
        const char *endpoint;
        int loopback;
    } table[] = {
        {"tcp://127.0.0.1:7400", 1},
        {"tcp://127.1.2.3:7400", 1},
        {"tcp://[::1]:7400", 1},
        {"tcp://localhost:7400", 1},
        {"tcp://LOCALHOST:7400", 1},
        {"tcp://[::ffff:127.0.0.1]:7400", 1},
        {"tcp://127.0.0.1:*", 1},
        {"tcp://10.0.0.1;127.0.0.1:7400", 1}, /* connect form: source;destination */
        {"ipc:///tmp/stage.sock", 1},
        {"inproc://node", 1},
        {"tcp://0.0.0.0:7400", 0},
        {"tcp://10.1.2.3:7400", 0},
        {"tcp://*:7400", 0},
        {"tcp://[::]:7400", 0},
        {"tcp://[::ffff:10.0.0.1]:7400", 0},
        {"tcp://eth0:7400", 0},
        {"tcp://lo:7400", 0}, /* interface names: not trusted to be loopback */
        {"tcp://localhost.evil.example:7400", 0},
        {"tcp://128.0.0.1:7400", 0},
        {"tcp://127.0.0.1", 0}, /* no port: malformed */
        {"tcp://127.0.0.1:", 0},
        {"tcp://:7400", 0},
        {"tcp://[::1:7400", 0},
        {"tcp://[::1]7400", 0},
        {"udp://127.0.0.1:7400", 0},
        {"127.0.0.1:7400", 0},
        {"ipc://", 0},
        {"", 0},
        {NULL, 0},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        cr_expect_eq(sn_curve_endpoint_is_loopback(table[i].endpoint), table[i].loopback, "%s",
                     table[i].endpoint ? table[i].endpoint : "(null)");

    static const struct {
        const char *host;
        int loopback;
    } hosts[] = {
        {"127.0.0.1", 1}, {"::1", 1},      {"[::1]", 1},      {"::ffff:127.9.9.9", 1},
        {"localhost", 1}, {"10.0.0.1", 0}, {"0.0.0.0", 0},    {"::", 0},
        {"", 0},          {NULL, 0},       {"127.0.0.1x", 0}, {"[::1", 0},
    };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        cr_expect_eq(sn_curve_address_is_loopback(hosts[i].host), hosts[i].loopback, "%s",
                     hosts[i].host ? hosts[i].host : "(null)");
}

Test(sn_curve, listen_check)
{
    char err[256] = "";
    /* loopback and ipc need CURVE or --insecure too: any local user reaches them */
    cr_assert_eq(sn_curve_listen_check("tcp://127.0.0.1:7400", 0, 0, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "tcp://127.0.0.1:7400"), "%s", err);
    cr_assert_eq(sn_curve_listen_check("ipc:///tmp/n1", 0, 0, err, sizeof err), SN_EINVAL);
    cr_assert_eq(sn_curve_listen_check("tcp://127.0.0.1:7400", 0, 1, err, sizeof err), SN_OK);
    cr_assert_eq(sn_curve_listen_check("tcp://0.0.0.0:7400", 1, 0, err, sizeof err), SN_OK);
    cr_assert_eq(sn_curve_listen_check("tcp://0.0.0.0:7400", 0, 1, err, sizeof err), SN_OK);
    cr_assert_eq(sn_curve_listen_check("tcp://0.0.0.0:7400", 0, 0, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "tcp://0.0.0.0:7400"), "%s", err);
    cr_assert(strstr(err, "--insecure"), "%s", err);
    cr_assert_null(strchr(err, '\n'));
    cr_assert_eq(sn_curve_listen_check("tcp://*:7400", 0, 0, err, sizeof err), SN_EINVAL);
    cr_assert(strstr(err, "tcp://*:7400"), "%s", err);
}

Test(sn_curve, bytecode_trust_table)
{
    /* Only a connection ZAP authenticated as a node carries code: not loopback, not ipc, not
     * --insecure (before issue 12, 127.0.0.1 and --insecure were trusted). */
    cr_expect_eq(sn_curve_trust_bytecode("n1"), SN_OK);
    cr_expect_eq(sn_curve_trust_bytecode(NULL), SN_EUNTRUSTED);
    cr_expect_eq(sn_curve_trust_bytecode(""), SN_EUNTRUSTED);
}
