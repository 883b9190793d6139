#!/usr/bin/env python3
"""How one hot key behaves under N writers of `etagstore edit`: a small
discrete-event simulation (docs/scaling.md states the model and what it
leaves out).

Model. Each writer loops forever: start a process (START ms), read the key
(one round trip, RTT ms, each half varying 50-150 %; the version is the
one current when the request reaches the service), run the change (WORK ms), send
the conditional write (decided when it reaches the service; the answer
takes another half round trip). The service applies writes
to one key one at a time, SERVICE ms each. A write succeeds iff no other
write landed since its read was served. After a refusal, `edit` waits as it
does (jittered backoff: 2 ms doubling to 500 ms, each pause 50-150 %), then
reads again in the same process. After a success the writer starts the next
edit (a new process).

    scripts/contention-sim.py [--rtt MS] [--start MS] [--work MS]
                              [--service MS] [--seconds S] [WRITERS ...]

Prints one line per writer count: commits per second, attempts per commit,
and the median and 99th-percentile time of one edit.
"""
import argparse
import heapq
import random


def simulate(writers, rtt, start, work, service, seconds, seed=1):
    rng = random.Random(seed)
    # Each half round trip varies, 50-150 % of RTT/2: networks jitter.
    trip = lambda: rtt / 2 * (0.5 + rng.random())
    version = 0
    service_free = 0.0
    commits = attempts = 0
    durations = []
    events = []  # (time, seq, writer, kind, data)
    seq = 0

    def push(time, writer, kind, data=None):
        nonlocal seq
        seq += 1
        heapq.heappush(events, (time, seq, writer, kind, data))

    state = {}
    for w in range(writers):
        state[w] = {"began": 0.0, "pause": 2.0}
        push(rng.uniform(0, start) + start + trip(), w, "read")
    end = seconds * 1000.0
    while events:
        time, _, w, kind, data = heapq.heappop(events)
        if time > end:
            break
        if kind == "read":
            # served now; the answer comes back, the change runs, the write goes out
            push(time + trip() + work + trip(), w, "write", version)
        elif kind == "write":
            attempts += 1
            begin = max(time, service_free)
            service_free = begin + service
            answered = service_free + trip()
            if data == version:
                version += 1
                commits += 1
                durations.append(answered - state[w]["began"])
                state[w] = {"began": answered, "pause": 2.0}
                push(answered + start + trip(), w, "read")
            else:
                pause = state[w]["pause"] * (0.5 + rng.random())
                state[w]["pause"] = min(state[w]["pause"] * 2, 500.0)
                push(answered + pause + trip(), w, "read")
    durations.sort()
    pick = lambda q: durations[min(len(durations) - 1, int(q * len(durations)))] if durations else 0
    return {
        "writers": writers,
        "commits_per_s": commits / seconds,
        "attempts_per_commit": attempts / commits if commits else float("inf"),
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt", type=float, default=20.0, help="round trip, ms (default 20)")
    parser.add_argument("--start", type=float, default=2.0, help="process start-up, ms (default 2)")
    parser.add_argument("--work", type=float, default=1.0, help="the change itself, ms (default 1)")
    parser.add_argument("--service", type=float, default=1.0, help="service time of one write, ms (default 1)")
    parser.add_argument("--seconds", type=float, default=600.0, help="simulated time (default 600)")
    parser.add_argument("writers", type=int, nargs="*", default=[1, 2, 4, 8, 16, 32, 64, 128])
    args = parser.parse_args()
    print(f"# rtt {args.rtt} ms, start {args.start} ms, work {args.work} ms, service {args.service} ms")
    print(f"{'writers':>8} {'commits/s':>10} {'attempts/commit':>16} {'p50 ms':>8} {'p99 ms':>8}")
    for w in args.writers:
        r = simulate(w, args.rtt, args.start, args.work, args.service, args.seconds)
        print(f"{w:>8} {r['commits_per_s']:>10.1f} {r['attempts_per_commit']:>16.2f} "
              f"{r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f}")


if __name__ == "__main__":
    main()
