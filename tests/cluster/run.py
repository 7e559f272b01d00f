#!/usr/bin/env python3
"""Runs the stage-node cluster tests: every function test_* of tests/cluster/test_*.py,
each in its own process (and process group) under a time bound.

  python3 tests/cluster/run.py [--binary PATH] [-v] [NAME...]

NAME selects tests: a module (test_routing), a function (test_target_forms) or both
(test_routing.test_target_forms); several may be given. Prints PASS/FAIL per test and
the closing line "cluster: N passed, N failed"; exits 1 if any failed. There is no skip: a
test that cannot run here fails and says why (docs/testing.md).
"""
import argparse
import glob
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)


def discover(names):
    import harness
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        mod_name = os.path.splitext(os.path.basename(path))[0]
        mod = importlib.import_module(mod_name)
        fns = [(getattr(fn, "__code__").co_firstlineno, name, fn)
               for name, fn in vars(mod).items()
               if name.startswith("test_") and callable(fn)
               and getattr(fn, "__module__", None) == mod_name]
        for _, name, fn in sorted(fns):
            tid = "%s.%s" % (mod_name, name)
            if names and not any(n in (mod_name, name, tid, "%s::%s" % (mod_name, name))
                                 for n in names):
                continue
            tests.append((tid, mod_name, name, getattr(fn, "timeout", harness.DEFAULT_TIMEOUT)))
    return tests


def cleanup_netns(prefix):
    try:
        out = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=10).stdout.decode()
    except (OSError, subprocess.TimeoutExpired):
        return
    for line in out.splitlines():
        ns = line.split()[0] if line.split() else ""
        if ns.startswith(prefix + "-"):
            subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


def run_parent(args):
    binary = os.path.abspath(args.binary)
    tests = discover(args.names)
    if not tests:
        print("cluster: no test matches %s" % " ".join(args.names))
        return 1
    counts = {"PASS": 0, "FAIL": 0}
    t_all = time.monotonic()
    for tid, mod, fn, bound in tests:
        run_id = "snt%d" % (os.getpid() % 100000)
        env = dict(os.environ, SN_CLUSTER_BINARY=binary, SNT_RUN_ID=run_id,
                   PYTHONUNBUFFERED="1")
        with tempfile.NamedTemporaryFile(prefix="sn-result-", suffix=".json",
                                         delete=False) as rf:
            result_path = rf.name
        argv = [sys.executable, os.path.abspath(__file__), "--child", mod, fn,
                "--binary", binary, "--result", result_path, "--bound", str(bound)]
        t0 = time.monotonic()
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 env=env, cwd=ROOT, start_new_session=True)
        try:
            out, _ = child.communicate(timeout=bound + 20)
            overrun = False
        except subprocess.TimeoutExpired:
            overrun = True
            child.send_signal(signal.SIGTERM)
            try:
                out, _ = child.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                out, _ = child.communicate()
        # whatever the test left behind in its process group dies now
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass
        cleanup_netns(run_id)
        dt = time.monotonic() - t0
        try:
            with open(result_path) as f:
                res = json.load(f)
        except (OSError, ValueError):
            res = {"result": "FAIL", "reason": "the test process died (status %s)%s" %
                   (child.returncode, ", over its time bound" if overrun else "")}
        os.unlink(result_path)
        r = res["result"]
        counts[r] += 1
        line = "%s %s (%.1f s)" % (r, tid, dt)
        if res.get("reason"):
            line += ": " + res["reason"].splitlines()[0][:300]
        print(line, flush=True)
        if r == "FAIL" or args.verbose:
            text = out.decode(errors="replace").rstrip()
            if text:
                print("\n".join("    " + l for l in text.splitlines()), flush=True)
    print("cluster: %d passed, %d failed (%.0f s)" %
          (counts["PASS"], counts["FAIL"], time.monotonic() - t_all))
    return 1 if counts["FAIL"] else 0


def run_child(args):
    import harness
    harness.BINARY = args.binary
    harness.install_signal_handlers()
    mod_name, fn_name = args.child
    result = {"result": "FAIL", "reason": ""}
    ctx = None

    def on_alarm(signum, frame):
        raise harness.TestFailure("test over its time bound of %d s" % args.bound)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.bound)
    try:
        mod = importlib.import_module(mod_name)
        fn = getattr(mod, fn_name)
        ctx = harness.Ctx("%s.%s" % (mod_name, fn_name), binary=args.binary)
        try:
            if not os.access(args.binary, os.X_OK):
                harness.fail("no binary at %s (build it: make build)" % args.binary)
            fn(ctx)
            result = {"result": "PASS"}
        except BaseException as e:
            signal.alarm(0)
            reason = str(e) or type(e).__name__
            result = {"result": "FAIL", "reason": reason}
            traceback.print_exc(file=sys.stdout)
            try:
                ctx.report(sys.stdout)
            except Exception as e2:
                print("report failed: %s" % e2)
        finally:
            signal.alarm(0)
            try:
                ctx.cleanup()
            except BaseException as e:
                print("cleanup failed: %s" % e)
    except BaseException as e:
        result = {"result": "FAIL", "reason": "%s: %s" % (type(e).__name__, e)}
        traceback.print_exc(file=sys.stdout)
    finally:
        with open(args.result, "w") as f:
            json.dump(result, f)
        sys.stdout.flush()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="tests to run (module, function or module.function)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "stage-node"))
    ap.add_argument("-v", "--verbose", action="store_true", help="print every test's output")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--bound", type=int, default=60, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return run_child(args)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
