# Turns scripts/bench's raw results into the markdown table (medians over runs).
#   python3 bench/report.py RESULTS META
# RESULTS: one line per run, "w=W1 client=lurl run=1 status=ok requests=..
# seconds=.. cpu=.. rss_kb=.." (W4 adds conns= bytes_per_conn= fds= idle=),
# or "status=missing|failed reason=free text to the end of the line".
# META: key=value lines (machine, versions, parameters).
import statistics
import sys
import time

ORDER = ["lurl", "wrk", "curl", "undici", "aiohttp", "lua-http"]


def parse_line(line):
    rec = {}
    head, sep, reason = line.partition(" reason=")
    for tok in head.split():
        k, _, v = tok.partition("=")
        rec[k] = v
    if sep:
        rec["reason"] = reason.strip()
    return rec


def load(path):
    with open(path) as f:
        return [parse_line(l) for l in f if l.strip()]


def meta_of(path):
    meta = {}
    with open(path) as f:
        for l in f:
            k, _, v = l.rstrip("\n").partition("=")
            meta[k] = v
    return meta


def med(xs):
    return statistics.median(xs) if xs else None


def spread(xs):
    """' ±N%': half the range of the runs relative to their median (2+ runs)."""
    if len(xs) < 2:
        return ""
    m = statistics.median(xs)
    return f" ±{(max(xs) - min(xs)) / 2 / m * 100:.0f}%" if m else ""


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_rss(kb):
    if not kb:
        return "—"
    return f"{kb / 1024:.1f} MiB"


def fmt_cpu(us):
    if us is None:
        return "—"
    return f"{us:,.1f}" if us < 100 else fmt_int(us)


def main():
    recs = load(sys.argv[1])
    meta = meta_of(sys.argv[2])
    runs = int(meta.get("runs", "3"))
    w1_n, w1_c = meta["w1"].split()
    w2_n, w2_c = meta["w2"].split()
    wrk_s, wrk2_s = meta["wrk_s"].split()
    curl_w1 = meta.get("curl_w1", w1_n)
    label = {"lua-http": meta.get("lua-http-label", "lua-http")}

    by = {}
    for r in recs:
        by.setdefault((r["w"], r["client"]), []).append(r)

    def ok(w, c):
        return [r for r in by.get((w, c), []) if r.get("status") == "ok"]

    def problem(w, c):
        """'missing: why' / 'failed: why' when no run succeeded, else None."""
        rs = by.get((w, c), [])
        if not rs:
            return None
        if ok(w, c):
            return None
        r = rs[0]
        return f"{r['status']}: {r.get('reason', '?')}"

    def rate(r, w):
        n, s = float(r["requests"]), float(r["seconds"])
        return n / s  # W1: req/s; W2: MiB/s, the bodies being 1 MiB each

    titles = {
        "W1": f"W1 1 KiB GET ×{int(w1_n):,}, {w1_c} conns",
        "W2": f"W2 1 MiB GET ×{int(w2_n):,}, {w2_c} conns",
        "W3": "W3 start + 1 GET + exit",
        "W4": f"W4 {int(meta['w4']):,} idle keep-alive conns",
    }
    rows = []
    partial_failures = []

    def note_failures(w, c, name):
        for r in by.get((w, c), []):
            if r.get("status") == "failed" and ok(w, c):
                partial_failures.append(f"{w} {name}: run {r.get('run', '?')} failed: {r.get('reason', '?')}")

    def load_result(w, c, rs):
        """W1, W2: throughput, and its ratio to wrk's."""
        ref = ok(w, "wrk")
        ref_rate = med([rate(r, w) for r in ref]) if ref else None
        rates = [rate(r, w) for r in rs]
        rt = med(rates)
        cpu = med([float(r["cpu"]) / float(r["requests"]) * 1e6 for r in rs])
        rss = med([float(r["rss_kb"]) for r in rs])
        unit = "req/s" if w == "W1" else "MiB/s"
        res = f"{fmt_int(rt)} {unit}{spread(rates)}"
        if c == "curl" and w == "W1" and curl_w1 != w1_n:
            res += f" ({int(curl_w1):,} requests)"
        ratio = "1.00× wrk" if c == "wrk" and ref_rate else (f"{rt / ref_rate:.2f}× wrk" if ref_rate else "—")
        return res, ratio, cpu, rss

    def start_result(w, c, rs):
        """W3: the time of one process, and its ratio to curl's."""
        ref = ok(w, "curl")
        ref_t = med([float(r["seconds"]) for r in ref]) if ref else None
        ts = [float(r["seconds"]) for r in rs]
        t = med(ts)
        cpu = med([float(r["cpu"]) * 1e6 for r in rs])
        rss = med([float(r["rss_kb"]) for r in rs if float(r["rss_kb"]) > 0])
        res = f"{t * 1000:.1f} ms{spread(ts)}"
        ratio = f"{t / ref_t:.2f}× curl" if ref_t else "—"
        return res, ratio, cpu, rss

    def memory_result(w, c, rs):
        """W4: memory per open connection, against the 8 KiB target."""
        pers = [float(r["bytes_per_conn"]) for r in rs]
        per = med(pers)
        fds = min(int(r["fds"]) for r in rs)
        idle = min(int(r["idle"]) for r in rs)
        conns = int(rs[0]["conns"])
        cpu = med([float(r["cpu"]) / conns * 1e6 for r in rs])
        rss = med([float(r["rss_kb"]) for r in rs])
        heap = med([float(r["lua_heap_per_conn"]) for r in rs if "lua_heap_per_conn" in r])
        heap_s = f"Lua heap {heap / 1024:.1f} KiB of it; " if heap is not None else ""
        res = f"{per / 1024:.1f} KiB/conn{spread(pers)} ({heap_s}{idle:,} idle in pool, {fds:,} fds open)"
        verdict = "meets target < 8 KiB" if per < 8192 else "over target 8 KiB"
        return res, verdict, cpu, rss

    def add_rows(w, result, ref_if_none):
        """One row per client of workload w: result(w, c, rs) -> (result, vs ref,
        CPU us, peak RSS kB) over its successful runs rs; a client with none gets
        its problem, and ref_if_none in the vs ref column."""
        for c in [c for c in ORDER if (w, c) in by]:
            name = label.get(c, c)
            p = problem(w, c)
            if p:
                rows.append((titles[w], name, p, ref_if_none, "—", "—"))
                continue
            rs = ok(w, c)
            res, ratio, cpu, rss = result(w, c, rs)
            if len(rs) < runs:
                res += f" ({len(rs)}/{runs} runs ok)"
                note_failures(w, c, name)
            rows.append((titles[w], name, res, ratio, fmt_cpu(cpu), fmt_rss(rss)))

    results = {"W1": load_result, "W2": load_result, "W3": start_result, "W4": memory_result}
    for w in ["W1", "W2", "W3", "W4"]:
        if any(k[0] == w for k in by):
            add_rows(w, results[w], "target < 8 KiB" if w == "W4" else "—")

    out = []
    out.append("## Benchmarks")
    out.append("")
    out.append(
        f"Machine: {meta['nproc']} × {meta['cpu']}; {meta['os']}; loopback, {meta['pinning']}. "
        f"Medians of {runs} run{'s' if runs != 1 else ''}; `scripts/bench`, {time.strftime('%Y-%m-%d')}, "
        f"{int(meta['elapsed']) // 60} min {int(meta['elapsed']) % 60} s; "
        f"load average before / after: {meta.get('load_before', '?')} / {meta.get('load_after', '?')}."
    )
    out.append("")
    out.append(
        f"Versions: {meta['lurl']}; server {meta['nginx']} (1 worker, access_log off); "
        f"wrk: {meta['wrk']}; curl: {meta['curl']}; undici: {meta['undici']}; "
        f"aiohttp: {meta['aiohttp']}; lua-http: {meta['lua-http']}; hyperfine: {meta['hyperfine']}."
    )
    if meta.get("only") != "W1 W2 W3 W4" or meta.get("peers") != " ".join(ORDER):
        out.append("")
        out.append(f"Partial run: workloads {meta.get('only')}; clients {meta.get('peers')}.")
    out.append("")
    out.append("| workload | client | result | vs ref | CPU us/req | peak RSS |")
    out.append("|---|---|---|---|---|---|")
    for r in rows:
        out.append("| " + " | ".join(x.replace("|", "/") for x in r) + " |")
    out.append("")
    notes = [
        "result: W1 requests/s, W2 MiB/s of response bodies, W3 wall time of one process "
        "(hyperfine median), W4 growth of VmRSS per open connection. Every client checks each "
        "status and body length (wrk does not check bodies).",
        "±N%: half the spread between the fastest and slowest run, relative to the median. "
        "A load average well above 0 before the run means something else was using the CPUs.",
        "vs ref: throughput ÷ wrk's (W1, W2; higher is better); W3 time ÷ curl's (lower is better).",
        "CPU us/req: user + system CPU of the client process (GNU time) ÷ requests; it includes "
        "process start-up. W3: CPU of one whole run; W4: per connection opened (one GET each).",
        "peak RSS: the client's maximum resident set (GNU time).",
        f"lurl, undici, aiohttp and lua-http time their load phase themselves; curl's figure is "
        f"its process wall time; wrk runs for a duration ({wrk_s} s in W1, {wrk2_s} s in W2) "
        "and its own req/s is used.",
        "lurl: one session, N tasks looping session:get (W2 streams with iter_chunked(65536)); "
        "undici: Pool{connections: N}, N loops; aiohttp: TCPConnector(limit=N), N tasks; "
        "lua-http: N cqueues coroutines each with its own http.client connection (0.4 has no pool); "
        "curl: --parallel --parallel-max N over a URL glob (`?[1-N]` query, ignored by nginx), "
        "-o /dev/null, -w status/size checked.",
    ]
    if curl_w1 != w1_n:
        notes.append(f"curl's W1 row is {int(curl_w1):,} requests instead of {int(w1_n):,}.")
    notes.extend(partial_failures)
    out.append("Notes:")
    out.append("")
    for n in notes:
        out.append(f"- {n}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
