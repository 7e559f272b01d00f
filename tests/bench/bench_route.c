/* bench_route: route publish (route:*news.x) to 1,000 subscriber stages, 500 on each of two
 * nodes, messages delivered per second, against the same deliveries sent by the publisher
 * itself, one stage.signal per subscriber (what route saves a script from writing), in the
 * same run. Rounds of 10 messages, each acknowledged by every subscriber, keep the
 * mailboxes and the peer queue bounded. Median and range of 3 runs of each; CPU-seconds of
 * both node processes beside wall seconds. */
#include "bench.h"
#include "bench_scripts.h"

#include <stdio.h>

#include <signal.h>
#include <sys/wait.h>

enum { RUNS = 3, SUBS = 500, ROUND = 10, ROUNDS = 20 }; /* 500 per node; 200 messages a run */

/* Both nodes: SUBS subscriber stages, spawned once the other node's main stage is known
 * (so that both agree on the route's home); each acks the publisher every ROUND messages.
 * The publisher starts once it routes to every subscriber by name and a probe through route
 * reaches all of them: a node learns a peer's new stages from the registry that peer sends
 * at its next heartbeat tick, so a subscriber's 'ready' can arrive up to a tick before its
 * name routes (the bench's earlier stall: 'no route to b441' ignored, acks never complete).
 * A send that fails while measuring ends the run with the reason, never a stall. */
static const char subs_lua[] =
    "local ME, OTHER, SUBS, ROUND = '%s', '%s', %d, %d\n"
    "local function sub()\n"
    "  local n = 0\n"
    "  stage.waitfor('hit', function() n = n + 1; if n %% ROUND == 0 then stage.signal('pub:ack') end end)\n"
    "  stage.waitfor('probe', function() end)\n"
    "  stage.waitfor('subbed', function(ok, e)\n"
    "    if not ok then print('error subscribe ' .. tostring(e)) end\n"
    "    stage.signal('pub:ready')\n"
    "  end)\n"
    "  stage.signal('route:@=subbed', {['news.'] = 'hit', ['probe.'] = 'probe'})\n"
    "end\n"
    "stage.waitfor('quit', function() stage.exit() end)\n"
    "local started = false\n"
    "stage.addtask(20, function()\n"
    "  if started then return nil end\n"
    "  if stage.signal(OTHER .. ':hello') > 0 then\n"
    "    started = true\n"
    "    for i = 1, SUBS do stage.spawn(ME .. i, sub) end\n"
    "    return nil\n"
    "  end\n"
    "  return 20\n"
    "end)\n"
    "stage.waitfor('hello', function() end)\n";

/* Node a also runs the publisher: phases direct, route, direct, ... RUNS of each. */
static const char pub_lua[] =
    "local BPID, SUBS, ROUND, ROUNDS, RUNS = %d, %d, %d, %d, %d\n"
    "local function cpu(pid)\n"
    "  local f = io.open('/proc/' .. pid .. '/stat'); local s = f:read('a'); f:close()\n"
    "  local v = {}\n"
    "  for x in s:gsub('^.-%%) ', ''):gmatch('%%S+') do v[#v + 1] = x end\n"
    "  return (tonumber(v[12]) + tonumber(v[13])) / 100\n"
    "end\n"
    "local function both() return cpu('self') + cpu(BPID) end\n"
    "stage.spawn('pub', function()\n"
    "  local ready, acks, round, phase, t0, c0 = 0, 0, 0, 0\n"
    "  local last = process.clock -- progress: a stall (30 s without one) ends the run\n"
    "  local phases = {}\n"
    "  for i = 1, RUNS do phases[#phases + 1] = 'direct'; phases[#phases + 1] = 'route' end\n"
    "  local function send_round()\n"
    "    for m = 1, ROUND do\n"
    "      if phases[phase] == 'route' then\n"
    "        stage.signal('route:*news.x', m)\n"
    "      else\n"
    "        for i = 1, SUBS do\n"
    "          local x, e = stage.signal('a' .. i .. ':hit', m)\n"
    "          local y, f = stage.signal('b' .. i .. ':hit', m)\n"
    "          if x == 0 or y == 0 then print('error lost: ' .. tostring(e or f)); stage.exit() return end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local function next_phase()\n"
    "    phase = phase + 1\n"
    "    if not phases[phase] then\n"
    "      stage.signal('b:quit'); stage.addtask(200, function() stage.exit() end)\n"
    "      return\n"
    "    end\n"
    "    round, acks, t0, c0 = 1, 0, process.clock, both()\n"
    "    send_round()\n"
    "  end\n"
    "  local function probe()\n"
    "    stage.signal('route:*probe.x=probed')\n"
    "  end\n"
    "  stage.waitfor('probed', function(n, e)\n"
    "    if n == 2 * SUBS then next_phase() return end\n"
    "    stage.addtask(20, probe)\n"
    "  end)\n"
    "  local function known(who)\n"
    "    last = process.clock\n"
    "    if stage.signal(who .. ':probe') == 0 then stage.addtask(20, function() known(who) end) return end\n"
    "    ready = ready + 1\n"
    "    if ready == 2 * SUBS then probe() end\n"
    "  end\n"
    "  stage.waitfor('ready', function() known(_WAITFOR[1].stage) end)\n"
    "  stage.waitfor('ack', function()\n"
    "    acks, last = acks + 1, process.clock\n"
    "    if acks < 2 * SUBS then return end\n"
    "    acks = 0\n"
    "    if round < ROUNDS then round = round + 1; send_round(); return end\n"
    "    local n = phases[phase] .. (phase + 1) // 2\n"
    "    print(n .. '_wall ' .. (process.clock - t0)); print(n .. '_cpu ' .. (both() - c0))\n"
    "    next_phase()\n"
    "  end)\n"
    "  stage.addtask(1000, function()\n"
    "    if process.clock - last < 30 then return 1000 end\n"
    "    print(string.format('error stalled 30 s: phase %%d (%%s) round %%d, acks %%d of %%d, ready %%d',\n"
    "      phase, tostring(phases[phase]), round, acks, 2 * SUBS, ready))\n"
    "    stage.exit()\n"
    "  end)\n"
    "end)\n";

static pid_t b_pid;

static void on_signal(int sig)
{
    (void)sig;
    if (b_pid > 0)
        kill(b_pid, SIGKILL);
    _exit(1);
}

int main(int argc, char **argv)
{
    (void)argc;
    char binary[4096];
    bench_binary(argv[0], binary, sizeof binary);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int pa = bench_free_port(), pb = bench_free_port();
    char text[8192], bscript[64], listen_b[64], join_a[64], actor_b[128];
    snprintf(text, sizeof text, subs_lua, "b", "a", SUBS, ROUND);
    bench_write_script(text, bscript, sizeof bscript);
    snprintf(listen_b, sizeof listen_b, "tcp://127.0.0.1:%d", pb);
    snprintf(join_a, sizeof join_a, "127.0.0.1:%d", pa);
    snprintf(actor_b, sizeof actor_b, "b=%s", bscript);
    b_pid = fork();
    if (b_pid == 0) {
        execl(binary, binary, "--name", "b", "--listen", listen_b, "--join", join_a,
              "--insecure", "--threads", "2", "--log-level", "warn", "--set", "peer_queue=100000",
              "--actor", actor_b, (char *)NULL);
        perror("bench_route: stage-node");
        _exit(127);
    }
    /* node a: the subscribers' script and the publisher, with b's pid for its CPU time */
    char a_text[16384];
    int n = snprintf(a_text, sizeof a_text, subs_lua, "a", "b", SUBS, ROUND);
    snprintf(a_text + n, sizeof a_text - (size_t)n, pub_lua, (int)b_pid, SUBS, ROUND, ROUNDS,
             RUNS);
    char flags[512];
    snprintf(flags, sizeof flags, "--name a --listen tcp://127.0.0.1:%d --insecure --threads 2 "
             "--log-level warn --set peer_queue=100000", pa);
    double direct[RUNS], route[RUNS], dcpu[RUNS], rcpu[RUNS];
    char path[64];
    bench_write_script(a_text, path, sizeof path);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s --actor a=%s", binary, flags, path);
    FILE *p = popen(cmd, "r");
    char line[512];
    int seen = 0;
    while (p && fgets(line, sizeof line, p)) {
        int k;
        double v;
        char kind[16], what[8];
        if (sscanf(line, "%15[a-z]%d_%7s %lf", kind, &k, what, &v) == 4 && k >= 1 && k <= RUNS) {
            int d = strcmp(kind, "direct") == 0;
            double *slot = strcmp(what, "wall") == 0 ? (d ? direct : route) : (d ? dcpu : rcpu);
            slot[k - 1] = v;
            seen++;
        } else if (strncmp(line, "error", 5) == 0) {
            fprintf(stderr, "bench_route: %s", line);
        }
    }
    int st = p ? pclose(p) : -1;
    unlink(path);
    int bst = 0;
    for (int i = 0; i < 100 && waitpid(b_pid, &bst, WNOHANG) == 0; i++)
        usleep(50000);
    if (waitpid(b_pid, &bst, WNOHANG) == 0) {
        kill(b_pid, SIGKILL);
        waitpid(b_pid, &bst, 0);
    }
    unlink(bscript);
    if (st != 0 || seen != 4 * RUNS) {
        fprintf(stderr, "bench_route: the publisher failed (status %d, %d of %d figures)\n", st,
                seen, 4 * RUNS);
        return 1;
    }
    double msgs = 2.0 * SUBS * ROUND * ROUNDS, rr[RUNS], dr[RUNS];
    for (int i = 0; i < RUNS; i++) {
        rr[i] = msgs / route[i];
        dr[i] = msgs / direct[i];
    }
    double rc = rcpu[RUNS / 2], dc = dcpu[RUNS / 2], rw = route[RUNS / 2], dw = direct[RUNS / 2];
    qsort(rr, RUNS, sizeof *rr, bench_cmp_double);
    qsort(dr, RUNS, sizeof *dr, bench_cmp_double);
    double ratio = rr[RUNS / 2] / dr[RUNS / 2];
    printf("| stages | route:*TOPIC to 1,000 subscriber stages on 2 nodes, deliveries per second, "
           "median of %d (range) | %.0f/s (%.0f-%.0f); run %d: %.2f CPU-s in %.2f s | "
           "one stage.signal per subscriber: %.0f/s (%.0f-%.0f); run %d: %.2f CPU-s in %.2f s | "
           "%.2fx | >= 0.50x | %s |\n",
           RUNS, rr[RUNS / 2], rr[0], rr[RUNS - 1], RUNS / 2 + 1, rc, rw, dr[RUNS / 2], dr[0],
           dr[RUNS - 1], RUNS / 2 + 1, dc, dw, ratio, ratio >= 0.5 ? "met" : "**missed**");
    fflush(stdout);
    return 0;
}
