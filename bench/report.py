# Turns scripts/bench's raw results into the markdown table (medians over runs).
#   python3 bench/report.py RESULTS META
# RESULTS: one line per run, "w=W1 client=lurl run=1 status=ok requests=..
# seconds=.. cpu=.. rss_kb=.." (W4 adds conns= bytes_per_conn= fds= idle=; W6
# and W7 resumed= logged= tls=, what nginx logged of the client's handshakes;
# W8 and W9 bytes=, those uploaded or decoded),
# or "status=missing|failed reason=free text to the end of the line".
# META: key=value lines (machine, versions, parameters).
import statistics
import sys
import time

ORDER = ["lurl", "wrk", "curl", "undici", "aiohttp", "lua-http", "zcat"]
ALL_WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9"]
MIB = 1048576


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


def resumed_share(rs):
    """W6, W7: the median share of nginx's logged requests that resumed a TLS
    session, as the result column says it."""
    shares = [int(r["resumed"]) / int(r["logged"]) for r in rs if int(r.get("logged", 0))]
    if not shares:
        return "resumed: ?"
    if max(shares) == 0:
        return "none resumed"
    return f"{med(shares) * 100:.1f}% resumed"


def main():
    recs = load(sys.argv[1])
    meta = meta_of(sys.argv[2])
    runs = int(meta.get("runs", "3"))
    w1_n, w1_c = meta["w1"].split()
    w2_n, w2_c = meta["w2"].split()
    w5_n, w5_c = meta.get("w5", "100000 64").split()
    hs_n, hs_c, hs_wrk_s = meta.get("hs", "2000 16 3").split()
    w8_mb = int(meta.get("w8", "1024"))
    w9_mb, w9_gz = (int(x) for x in meta.get("w9", "1024 0").split())
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
        return n / s  # W1, W5: req/s; W2: MiB/s, the bodies being 1 MiB each; W6, W7: handshakes/s

    titles = {
        "W1": f"W1 1 KiB GET ×{int(w1_n):,}, {w1_c} conns",
        "W2": f"W2 1 MiB GET ×{int(w2_n):,}, {w2_c} conns",
        "W3": "W3 start + 1 GET + exit",
        "W4": f"W4 {int(meta['w4']):,} idle keep-alive conns",
        "W5": f"W5 HTTPS 1 KiB GET ×{int(w5_n):,}, {w5_c} conns",
        "W6": f"W6 TLS full handshakes ×{int(hs_n):,}, {hs_c} at once",
        "W7": f"W7 TLS resumed handshakes ×{int(hs_n):,}, {hs_c} at once",
        "W8": f"W8 upload (POST) of a {w8_mb:,} MiB file",
        "W9": f"W9 gzip download, {w9_mb:,} MiB decoded" + (f" ({w9_gz / MIB:,.0f} MiB on the wire)" if w9_gz else ""),
    }
    rows = []
    partial_failures = []

    def note_failures(w, c, name):
        for r in by.get((w, c), []):
            if r.get("status") == "failed" and ok(w, c):
                partial_failures.append(f"{w} {name}: run {r.get('run', '?')} failed: {r.get('reason', '?')}")

    def throughput(w, rs, ref_client):
        """Runs rs of workload w: their rates, the median rate, ref_client's
        median rate (None without a successful run), CPU us per request and
        peak RSS (medians)."""
        ref = ok(w, ref_client)
        ref_rate = med([rate(r, w) for r in ref]) if ref else None
        rates = [rate(r, w) for r in rs]
        cpu = med([float(r["cpu"]) / float(r["requests"]) * 1e6 for r in rs])
        rss = med([float(r["rss_kb"]) for r in rs])
        return rates, med(rates), ref_rate, cpu, rss

    def load_result(w, c, rs):
        """W1, W2, W5: throughput, and its ratio to wrk's."""
        rates, rt, ref_rate, cpu, rss = throughput(w, rs, "wrk")
        unit = "MiB/s" if w == "W2" else "req/s"
        res = f"{fmt_int(rt)} {unit}{spread(rates)}"
        if c == "curl" and w == "W1" and curl_w1 != w1_n:
            res += f" ({int(curl_w1):,} requests)"
        ratio = "1.00× wrk" if c == "wrk" and ref_rate else (f"{rt / ref_rate:.2f}× wrk" if ref_rate else "—")
        return res, ratio, cpu, rss

    def handshake_result(w, c, rs):
        """W6, W7: new TLS connections per second, the share nginx saw resumed,
        and the rate's ratio to curl's."""
        rates, rt, ref_rate, cpu, rss = throughput(w, rs, "curl")
        res = f"{fmt_int(rt)} handshakes/s{spread(rates)} ({resumed_share(rs)})"
        ratio = f"{rt / ref_rate:.2f}× curl" if ref_rate else "—"
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

    def transfer_result(w, c, rs):
        """W8, W9: MiB/s of one big transfer (uploaded, decoded), CPU us per
        MiB; W8 against curl's MiB/s, W9 time against zcat's."""
        def mibs(r):
            return float(r["bytes"]) / MIB / float(r["seconds"])
        ref_client = "curl" if w == "W8" else "zcat"
        ref = ok(w, ref_client)
        ref_rate = med([mibs(r) for r in ref]) if ref else None
        rates = [mibs(r) for r in rs]
        rt = med(rates)
        cpu = med([float(r["cpu"]) / (float(r["bytes"]) / MIB) * 1e6 for r in rs])
        rss = med([float(r["rss_kb"]) for r in rs])
        res = f"{fmt_int(rt)} MiB/s{spread(rates)}"
        if not ref_rate:
            ratio = "—"
        elif w == "W8":
            ratio = f"{rt / ref_rate:.2f}× curl"
        else:
            ratio = f"time {ref_rate / rt:.2f}× zcat"
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

    results = {"W1": load_result, "W2": load_result, "W3": start_result, "W4": memory_result,
               "W5": load_result, "W6": handshake_result, "W7": handshake_result,
               "W8": transfer_result, "W9": transfer_result}
    for w in ALL_WORKLOADS:
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
        f"aiohttp: {meta['aiohttp']}; lua-http: {meta['lua-http']}; hyperfine: {meta['hyperfine']}"
        + (f"; zcat: {meta['zcat']}." if "zcat" in meta else ".")
    )
    if meta.get("only") != " ".join(ALL_WORKLOADS) or meta.get("peers") != " ".join(ORDER):
        out.append("")
        out.append(f"Partial run: workloads {meta.get('only')}; clients {meta.get('peers')}.")
    out.append("")
    out.append("| workload | client | result | vs ref | CPU us/req | peak RSS |")
    out.append("|---|---|---|---|---|---|")
    for r in rows:
        out.append("| " + " | ".join(x.replace("|", "/") for x in r) + " |")
    out.append("")
    notes = [
        "result: W1, W5 requests/s, W2 MiB/s of response bodies, W3 wall time of one process "
        "(hyperfine median), W4 growth of VmRSS per open connection, W6 and W7 new TLS "
        "connections per second (one GET each), W8 MiB/s uploaded, W9 MiB/s of decoded output. "
        "Every client checks each status and body length (wrk does not check bodies).",
        "±N%: half the spread between the fastest and slowest run, relative to the median. "
        "A load average well above 0 before the run means something else was using the CPUs.",
        "vs ref: throughput ÷ wrk's (W1, W2, W5; higher is better); W3 time ÷ curl's (lower is "
        "better); handshakes/s ÷ curl's (W6, W7; higher is better); MiB/s ÷ curl's (W8; higher "
        "is better); time ÷ zcat's (W9; lower is better).",
        "CPU us/req: user + system CPU of the client process (GNU time) ÷ requests; it includes "
        "process start-up. W3: CPU of one whole run; W4: per connection opened (one GET each); "
        "W6, W7: per handshake (= per request); W8, W9: per MiB (uploaded, decoded).",
        "peak RSS: the client's maximum resident set (GNU time).",
        f"lurl, undici, aiohttp and lua-http time their load phase themselves; curl's figure is "
        f"its process wall time; wrk runs for a duration ({wrk_s} s in W1 and W5, {wrk2_s} s in W2) "
        "and its own req/s is used.",
        "lurl: one session, N tasks looping session:get (W2 streams with iter_chunked(65536)); "
        "undici: Pool{connections: N}, N loops; aiohttp: TCPConnector(limit=N), N tasks; "
        "lua-http: N cqueues coroutines each with its own http.client connection (0.4 has no pool); "
        "curl: --parallel --parallel-max N over a URL glob (`?[1-N]` query, ignored by nginx), "
        "-o /dev/null, -w status/size checked.",
    ]
    if any(k[0] in ("W5", "W6", "W7") for k in by):
        notes.append(
            "W5-W7 (HTTPS): nginx serves TLS 1.2 and 1.3 with a throwaway "
            "EC P-256 certificate from spec/tls/make_certs.sh; lurl, curl, undici and aiohttp verify "
            "it against the throwaway CA (lurl.ssl_context{cafile}, --cacert, connect.ca, "
            "ssl.create_default_context(cafile=)); wrk does not verify certificates. lua-http is not "
            "run over HTTPS.")
    if any(k[0] in ("W6", "W7") for k in by):
        notes.append(
            "W6, W7: each GET on a new TLS connection: lurl connector{force_close = true}, curl "
            "-H 'Connection: close' (and --parallel-max N), undici 'connection: close', aiohttp "
            "TCPConnector(force_close=True), wrk -H 'Connection: close'; the server also closes "
            "(keepalive_timeout 0). W6's server has no session tickets or cache (full handshakes "
            "only); W7's has nginx's tickets. % resumed: nginx's $ssl_session_reused over the run's "
            "requests (median of runs); every logged request was its connection's first. "
            f"wrk runs {hs_wrk_s} s; the others make {int(hs_n):,} connections, {hs_c} at a time. "
            "Protocols nginx logged: " + (", ".join(sorted({r["tls"] for r in recs if r.get("tls")})) or "?") + ".")
    if any(k[0] == "W8" for k in by):
        notes.append(
            f"W8: one POST of a {w8_mb:,} MiB file of random bytes (made at bench time, in the page "
            "cache) to bench/upload_server.py (Python, pinned like nginx), which reads the body to "
            "the end and answers with its byte count; each client checks that count. lurl: "
            "data = lurl.file(path) (read 256 KiB at a time through libuv's thread pool); curl: "
            "-X POST -T file (streamed; it sends Expect: 100-continue, answered at once); aiohttp: "
            "data=open(file, 'rb'). Each client times its request (curl: time_total). Targets: lurl "
            "≥ curl's MiB/s, peak RSS < 32 MiB.")
    if any(k[0] == "W9" for k in by):
        notes.append(
            f"W9: nginx serves {w9_mb:,} MiB of access-log lines (bench/make_gzip.py, deflate level 6) "
            "precompressed (gzip_static, Content-Encoding: gzip) to clients that accept gzip. lurl: "
            "auto_decompress (default), stream = true, iter_chunked(262144), decoded bytes counted "
            "and checked; aiohttp: auto_decompress, iter_chunked(262144), counted; curl: --compressed "
            "-o /dev/null (status, Content-Encoding and wire size checked; zlib checks the gzip "
            "trailer's CRC-32 and length), time_total; zcat: `zcat file.gz > /dev/null` on nginx's "
            "file, process wall time (GNU time), no network. Target: lurl's time ≤ 1.2× zcat's.")
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
