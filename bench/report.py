# Turns scripts/bench's raw results into the markdown table (medians over runs).
#   python3 bench/report.py WORKLOADS RESULTS META
# WORKLOADS: the rows of bench/workloads.txt as run (scaled, bytes in bytes).
# RESULTS: one JSON object per run: w, client, adapter, run, status (ok,
# missing, failed), and reason, or for ok: result (the adapter's JSON line:
# requests, seconds, and what else its kind shows), time (GNU time's
# elapsed, user, system seconds and peak RSS kB of the adapter's process) and
# for handshake servers nginx (logged, resumed, multi, tls: what nginx logged
# of the run's requests); through a proxy, proxy (cpu and origin_cpu: the CPU
# seconds tinyproxy and nginx's worker used during the run; requests and
# connections: what tinyproxy logged of it); on the WebSocket echo server,
# ws_server (cpu: the CPU seconds the server used during the run).
# META: key=value lines (machine, versions, parameters).
import json
import statistics
import sys
import time

MIB = 1048576


def load_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            id_, kind, server, nbytes, requests, conns, seconds, ref, clients, title = line.split(None, 9)
            rows.append({"id": id_, "kind": kind, "server": server, "bytes": int(nbytes),
                         "requests": int(requests), "conns": int(conns), "seconds": seconds,
                         "ref": None if ref == "-" else ref,
                         "adapters": clients.split(","), "title": title.strip()})
    return rows


def meta_of(path):
    meta = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    return meta


def handshake_problem(rec, row):
    """Why nginx's log of a run on a handshake server contradicts it, or None."""
    ng, res = rec["nginx"], rec["result"]
    if ng["logged"] < res["requests"]:
        return f"nginx logged {ng['logged']} of {res['requests']} requests"
    if ng["multi"]:
        return f"{ng['multi']} of {ng['logged']} requests shared a connection with another"
    if row["server"] == "https-full" and ng["resumed"]:
        return f"nginx logged resumed={ng['resumed']} on the server without tickets or session cache"
    if "resumed" in res and res["resumed"] != ng["resumed"]:
        return f"{rec['client']} counted resumed={res['resumed']}, nginx logged {ng['resumed']}"
    return None


def proxy_problem(rec):
    """Why the proxy's log of a run contradicts it (a request that did not go
    through the proxy), or None."""
    px, n = rec["proxy"], rec["result"]["requests"]
    if px["requests"] != n:
        return f"tinyproxy logged {px['requests']} requests of {rec['client']}'s {n}"
    return None


def flatten(rec, row):
    """A run's record as one flat dict: status, reason, and for a good run its
    result with cpu (seconds) and rss_kb: the adapter's own when it measured
    its client itself, else GNU time's of the adapter's process."""
    if rec["status"] != "ok":
        return rec
    res = rec["result"]
    if "requests" not in res or "seconds" not in res:
        return dict(rec, status="failed", reason="its line has no requests or seconds: " + json.dumps(res)[:120])
    why = handshake_problem(rec, row) if "nginx" in rec else None
    why = why or (proxy_problem(rec) if "proxy" in rec else None)
    if why:
        return dict(rec, status="failed", reason=why)
    _, user, system, rss_kb = rec["time"]
    flat = dict(res, w=rec["w"], client=rec["client"], run=rec["run"], status="ok")
    flat.setdefault("cpu_seconds", user + system)
    flat.setdefault("rss_kb", rss_kb)
    if "nginx" in rec:
        flat.update(logged=rec["nginx"]["logged"], resumed=rec["nginx"]["resumed"], tls=rec["nginx"]["tls"])
    if "proxy" in rec:
        px = rec["proxy"]
        flat.update(proxy_cpu=px["cpu"], origin_cpu=px["origin_cpu"], proxy_conns=px["connections"])
    if "ws_server" in rec:
        flat.update(server_cpu=rec["ws_server"]["cpu"])
    if "urllist" in rec:
        flat.update(mismatched=rec["urllist"]["mismatched"], mismatch_kinds=rec["urllist"]["kinds"])
    return flat


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


def fmt_mib(n):
    mib = n / MIB
    return f"{mib:,.0f}" if mib == int(mib) or mib >= 100 else f"{mib:.1f}"


def fmt_rss(kb):
    if not kb:
        return "—"
    return f"{kb / 1024:.1f} MiB"


def fmt_cpu(us):
    if us is None:
        return "—"
    return f"{us:,.1f}" if us < 100 else fmt_int(us)


def resumed_share(rs):
    """Handshakes: the median share of nginx's logged requests that resumed a
    TLS session, as the result column says it."""
    shares = [r["resumed"] / r["logged"] for r in rs if r.get("logged")]
    if not shares:
        return "resumed: ?"
    if max(shares) == 0:
        return "none resumed"
    return f"{med(shares) * 100:.1f}% resumed"


def proxy_share(name, rs):
    """Through a proxy: the median share of a CPU that the client, tinyproxy
    and nginx's worker used over the client's measured time, as the result
    column says it."""
    def pct(key):
        return f"{med([r[key] / r['seconds'] for r in rs]) * 100:.0f}%"
    return f"CPU: {name} {pct('cpu_seconds')}; tinyproxy {pct('proxy_cpu')}, nginx {pct('origin_cpu')}"


def ws_share(name, rs):
    """WebSocket echo: the median share of a CPU that the client and the echo
    server used over the client's measured time, and how much the client's
    VmRSS grew from a tenth of the messages to the end."""
    def pct(key):
        return f"{med([r[key] / r['seconds'] for r in rs]) * 100:.0f}%"
    out = f"CPU: {name} {pct('cpu_seconds')}, server {pct('server_cpu')}"
    growth = [(r["rss_end"] - r["rss_warm"]) / r["rss_warm"] * 100 for r in rs if r.get("rss_warm")]
    if growth:
        out += f"; RSS {med(growth):+.1f}% after warm-up"
    return out


def title_of(row, meta):
    t = row["title"].format(requests=f"{row['requests']:,}", conns=f"{row['conns']:,}", mib=fmt_mib(row["bytes"]))
    wire = int(meta.get("wire_" + row["id"], "0"))
    if wire:
        t += f" ({fmt_mib(wire)} MiB on the wire)"
    return f"{row['id']} {t}"


class Table:
    """The runs of every workload and client, and the rows they make."""

    def __init__(self, rows, recs, meta):
        self.meta = meta
        self.runs = int(meta.get("runs", "3"))
        self.label = {"luahttp": meta.get("luahttp_label", "lua-http"), "nodews": "node ws",
                      "lurlmap": "lurl.map script", "aiodns": "aiohttp + aiodns", "xargs": "xargs -P + curl"}
        by_id = {r["id"]: r for r in rows}
        self.by = {}
        for rec in recs:
            flat = flatten(rec, by_id[rec["w"]])
            self.by.setdefault((rec["w"], rec["client"]), []).append(flat)
        self.partial_failures = []

    def ok(self, w, c):
        return [r for r in self.by.get((w, c), []) if r.get("status") == "ok"]

    def problem(self, w, c):
        """'missing: why' / 'failed: why' when no run succeeded, else None."""
        rs = self.by.get((w, c), [])
        if not rs or self.ok(w, c):
            return None
        r = rs[0]
        return f"{r['status']}: {r.get('reason', '?')}"

    def ref_median(self, row, value):
        ref = self.ok(row["id"], row["ref"]) if row["ref"] else []
        return med([value(r) for r in ref]) if ref else None

    def rate_result(self, row, c, rs, rate, unit, cpu_per):
        """requests, bodies, handshakes, upload: a rate, its ratio to ref's."""
        rates = [rate(r) for r in rs]
        rt = med(rates)
        ref_rate = self.ref_median(row, rate)
        cpu = med([r["cpu_seconds"] / cpu_per(r) * 1e6 for r in rs])
        rss = med([float(r["rss_kb"]) for r in rs])
        ratio = f"{rt / ref_rate:.2f}× {row['ref']}" if ref_rate else "—"
        return f"{fmt_int(rt)} {unit}{spread(rates)}", ratio, cpu, rss

    def requests_result(self, row, c, rs):
        res, ratio, cpu, rss = self.rate_result(row, c, rs, lambda r: r["requests"] / r["seconds"], "req/s",
                                                lambda r: r["requests"])
        if all("proxy_cpu" in r for r in rs):
            res += f" ({proxy_share(self.label.get(c, c), rs)})"
        return res, ratio, cpu, rss

    def wstext_result(self, row, c, rs):
        """WebSocket echo: messages/s, its ratio to ref's, the client's and
        the server's CPU share."""
        res, ratio, cpu, rss = self.rate_result(row, c, rs, lambda r: r["requests"] / r["seconds"], "msg/s",
                                                lambda r: r["requests"])
        if all("server_cpu" in r for r in rs):
            res += f" ({ws_share(self.label.get(c, c), rs)})"
        return res, ratio, cpu, rss

    wsbinary_result = wstext_result

    def urllist_result(self, row, c, rs):
        """A URL list: wall time, URLs/s, CPU seconds, and how many URLs the
        worst run misclassified; speed against ref's (its time ÷ this one's)."""
        ts = [r["seconds"] for r in rs]
        t = med(ts)
        ref_t = self.ref_median(row, lambda r: r["seconds"])
        cpu = med([r["cpu_seconds"] / r["requests"] * 1e6 for r in rs])
        rss = med([float(r["rss_kb"]) for r in rs])
        worst = max(rs, key=lambda r: r["mismatched"])
        wrong = f"{worst['mismatched']:,} misclassified" + (
            " (" + ", ".join(f"{k} {n:,}" for k, n in sorted(worst["mismatch_kinds"].items())) + ")"
            if worst["mismatched"] else "")
        res = (f"{t:.1f} s{spread(ts)} ({row['requests'] / t:,.0f} URLs/s, CPU "
               f"{med([r['cpu_seconds'] for r in rs]):.1f} s; {wrong})")
        return res, f"speed {ref_t / t:.2f}× {row['ref']}" if ref_t else "—", cpu, rss

    def bodies_result(self, row, c, rs):
        return self.rate_result(row, c, rs, lambda r: r["requests"] * row["bytes"] / MIB / r["seconds"], "MiB/s",
                                lambda r: r["requests"])

    def handshakes_result(self, row, c, rs):
        res, ratio, cpu, rss = self.rate_result(row, c, rs, lambda r: r["requests"] / r["seconds"], "handshakes/s",
                                                lambda r: r["requests"])
        return f"{res} ({resumed_share(rs)})", ratio, cpu, rss

    def upload_result(self, row, c, rs):
        return self.rate_result(row, c, rs, lambda r: r["bytes"] / MIB / r["seconds"], "MiB/s",
                                lambda r: r["bytes"] / MIB)

    def gunzip_result(self, row, c, rs):
        """MiB/s of decoded output; time (lower is better) against ref's."""
        res, _, cpu, rss = self.upload_result(row, c, rs)
        rt = med([r["bytes"] / MIB / r["seconds"] for r in rs])
        ref_rate = self.ref_median(row, lambda r: r["bytes"] / MIB / r["seconds"])
        return res, f"time {ref_rate / rt:.2f}× {row['ref']}" if ref_rate else "—", cpu, rss

    def start_result(self, row, c, rs):
        """The time of one process, and its ratio to ref's."""
        ts = [r["seconds"] for r in rs]
        t = med(ts)
        ref_t = self.ref_median(row, lambda r: r["seconds"])
        cpu = med([r["cpu_seconds"] * 1e6 for r in rs])
        rss = med([float(r["rss_kb"]) for r in rs if r["rss_kb"]])
        ratio = f"{t / ref_t:.2f}× {row['ref']}" if ref_t else "—"
        return f"{t * 1000:.1f} ms{spread(ts)}", ratio, cpu, rss

    def memory_result(self, row, c, rs):
        """Memory per open connection, against the 8 KiB target."""
        pers = [float(r["bytes_per_conn"]) for r in rs]
        per = med(pers)
        fds = min(int(r["fds"]) for r in rs)
        idle = min(int(r["idle"]) for r in rs)
        conns = int(rs[0]["conns"])
        cpu = med([r["cpu_seconds"] / conns * 1e6 for r in rs])
        rss = med([float(r["rss_kb"]) for r in rs])
        heap = med([float(r["lua_heap_per_conn"]) for r in rs if "lua_heap_per_conn" in r])
        heap_s = f"Lua heap {heap / 1024:.1f} KiB of it; " if heap is not None else ""
        res = f"{per / 1024:.1f} KiB/conn{spread(pers)} ({heap_s}{idle:,} idle in pool, {fds:,} fds open)"
        verdict = "meets target < 8 KiB" if per < 8192 else "over target 8 KiB"
        return res, verdict, cpu, rss

    def rows_of(self, row):
        """One table row per client of the workload, in the order of its adapters;
        a client without a good run gets its problem."""
        out = []
        w = row["id"]
        title = title_of(row, self.meta)
        result = getattr(self, row["kind"] + "_result")
        clients = list(dict.fromkeys(a.split("_")[0] for a in row["adapters"]))
        for c in [c for c in clients if (w, c) in self.by]:
            name = self.label.get(c, c)
            p = self.problem(w, c)
            if p:
                out.append((title, name, p, "target < 8 KiB" if row["kind"] == "memory" else "—", "—", "—"))
                continue
            rs = self.ok(w, c)
            res, ratio, cpu, rss = result(row, c, rs)
            if len(rs) < self.runs:
                res += f" ({len(rs)}/{self.runs} runs ok)"
                self.partial_failures += [f"{w} {name}: run {r.get('run', '?')} failed: {r.get('reason', '?')}"
                                          for r in self.by[(w, c)] if r.get("status") == "failed"]
            out.append((title, name, res, ratio, fmt_cpu(cpu), fmt_rss(rss)))
        return out


def wrk_durations(rows):
    """'10 s in W1 and W5, 5 s in W2': how long wrk ran in the load workloads."""
    ids_by_s = {}
    for row in rows:
        if row["kind"] in ("requests", "bodies") and any(a.startswith("wrk_") for a in row["adapters"]):
            ids_by_s.setdefault(row["seconds"], []).append(row["id"])
    return ", ".join(f"{s} s in {' and '.join(ids)}" for s, ids in ids_by_s.items())


def notes_of(rows, recs, meta):
    kinds = {r["kind"] for r in rows}
    hs = [r for r in rows if r["kind"] == "handshakes"]
    notes = [
        "result: W1, W5 requests/s, W2 MiB/s of response bodies, W3 wall time of one process "
        "(hyperfine median), W4 growth of VmRSS per open connection, W6 and W7 new TLS "
        "connections per second (one GET each), W8 MiB/s uploaded, W9 MiB/s of decoded output, "
        "W10 requests/s through tinyproxy, W11-W13 WebSocket messages echoed per second. "
        "Every client checks each status and body length (wrk does not check bodies).",
        "±N%: half the spread between the fastest and slowest run, relative to the median. "
        "A load average well above 0 before the run means something else was using the CPUs.",
        "vs ref: throughput ÷ wrk's (W1, W2, W5; higher is better); W3 time ÷ curl's (lower is "
        "better); handshakes/s ÷ curl's (W6, W7; higher is better); MiB/s ÷ curl's (W8; higher "
        "is better); time ÷ zcat's (W9; lower is better); req/s ÷ curl's (W10; higher is better); msg/s ÷ "
        "the faster peer's in the runs that set the rows (node ws in W11, W12; aiohttp in W13; higher is better).",
        "CPU us/req: user + system CPU of the client process (GNU time) ÷ requests; it includes "
        "process start-up. W3: CPU of one whole run; W4: per connection opened (one GET each); "
        "W6, W7: per handshake (= per request); W8, W9: per MiB (uploaded, decoded).",
        "peak RSS: the client's maximum resident set (GNU time).",
        "lurl, undici, aiohttp and lua-http time their load phase themselves; curl's figure is "
        "its process wall time" + (f"; wrk runs for a duration ({wrk_durations(rows)}) and its own req/s is used."
                                   if wrk_durations(rows) else "."),
        "lurl: one session, N tasks looping session:get (W2 streams with iter_chunked(65536)); "
        "undici: Pool{connections: N}, N loops; aiohttp: TCPConnector(limit=N), N tasks; "
        "lua-http: N cqueues coroutines each with its own http.client connection (0.4 has no pool); "
        "curl: --parallel --parallel-max N over a URL glob (`?[1-N]` query, ignored by nginx), "
        "-o /dev/null, -w status/size checked.",
    ]
    if any(r["server"].startswith("https") for r in rows):
        notes.append(
            "W5-W7 (HTTPS): nginx serves TLS 1.2 and 1.3 with a throwaway "
            "EC P-256 certificate from spec/tls/make_certs.sh; lurl, curl, undici and aiohttp verify "
            "it against the throwaway CA (lurl.ssl_context{cafile}, --cacert, connect.ca, "
            "ssl.create_default_context(cafile=)); wrk does not verify certificates. lua-http is not "
            "run over HTTPS.")
    if hs:
        protocols = sorted({p for r in recs if r.get("nginx") for p in r["nginx"]["tls"].split("+") if p})
        notes.append(
            "W6, W7: each GET on a new TLS connection: lurl connector{force_close = true}, curl "
            "-H 'Connection: close' (and --parallel-max N), undici 'connection: close', aiohttp "
            "TCPConnector(force_close=True), wrk -H 'Connection: close'; the server also closes "
            "(keepalive_timeout 0). W6's server has no session tickets or cache (full handshakes "
            "only); W7's has nginx's tickets. % resumed: nginx's $ssl_session_reused over the run's "
            "requests (median of runs); every logged request was its connection's first. "
            f"wrk runs {hs[0]['seconds']} s; the others make {hs[0]['requests']:,} connections, "
            f"{hs[0]['conns']} at a time. Protocols nginx logged: {', '.join(protocols) or '?'}.")
    if "upload" in kinds:
        mib = fmt_mib(next(r["bytes"] for r in rows if r["kind"] == "upload"))
        notes.append(
            f"W8: one POST of a {mib} MiB file of random bytes (made at bench time, in the page "
            "cache) to bench/upload_server.py (Python, pinned like nginx), which reads the body to "
            "the end and answers with its byte count; each client checks that count. lurl: "
            "data = lurl.file(path) (read 124 KiB at a time through libuv's thread pool); curl: "
            "-X POST -T file (streamed; it sends Expect: 100-continue, answered at once); aiohttp: "
            "data=open(file, 'rb'). Each client times its request (curl: time_total). Targets: lurl "
            "≥ curl's MiB/s, peak RSS < 32 MiB.")
    if "gunzip" in kinds:
        mib = fmt_mib(next(r["bytes"] for r in rows if r["kind"] == "gunzip"))
        notes.append(
            f"W9: nginx serves {mib} MiB of access-log lines (bench/make_gzip.py, deflate level 6) "
            "precompressed (gzip_static, Content-Encoding: gzip) to clients that accept gzip. lurl: "
            "auto_decompress (default), stream = true, iter_chunked(262144), decoded bytes counted "
            "and checked; aiohttp: auto_decompress, iter_chunked(262144), counted; curl: --compressed "
            "-o /dev/null (status, Content-Encoding and wire size checked; zlib checks the gzip "
            "trailer's CRC-32 and length), time_total; zcat: `zcat file.gz > /dev/null` on nginx's "
            "file, process wall time (GNU time), no network. Target: lurl's time ≤ 1.2× zcat's.")
    if any(r["server"] == "http-proxy" for r in rows):
        notes.append(proxy_note(rows, recs, meta))
    if any(r["server"] == "ws-echo" for r in rows):
        notes.append(ws_note(rows, meta))
    if "urllist" in kinds:
        notes.append(urllist_note(rows, meta))
    return notes


def ws_note(rows, meta):
    """W11-W13: the WebSocket echo rows: the server, the window, what is checked."""
    ids = ", ".join(r["id"] for r in rows if r["server"] == "ws-echo")
    return (
        f"{ids} (WebSocket echo; CPU us/req is per message): every client talks to the same echo server, "
        f"spec/interop/ws_servers/ws_server.js on {meta.get('nodews', 'node ws')} (the interop checks' peer), "
        "pinned to CPU 1, one process. permessage-deflate is off for all (the server runs with --no-deflate; "
        "lurl compress = false, aiohttp compress=0, ws perMessageDeflate: false): payloads are random and "
        "it would measure zlib. Each connection keeps "
        f"{meta.get('ws_window', '?')} message(s) in flight: it sends, waits for the echo, checks it "
        "(type and every byte), sends the next. The messages count is in all, split over the connections. "
        "Text is base64 of random bytes (valid UTF-8), binary random bytes, the same file for every client. "
        "lurl: session:ws_connect, send_str/send_bytes, receive; aiohttp: session.ws_connect, "
        "send_str/send_bytes, receive; node ws: new WebSocket, send, on('message'). Each client times its "
        "echo phase (connecting and closing included). CPU: the client's (GNU time, start-up included; on "
        "CPU 0) and the server's (/proc/PID/stat; CPU 1) ÷ the client's measured time, medians of runs: the "
        "server near 100% means it was the bound. RSS: the client's VmRSS at the end against that after a "
        "tenth of the messages.")


def urllist_note(rows, meta):
    """W14: the URL list, its servers, each client's setup, what is checked."""
    ids = ", ".join(r["id"] for r in rows if r["kind"] == "urllist")
    return (
        f"{ids} (a URL list; CPU us/req is per URL): bench/urllist.py's list, shuffled, over h1.bench.test ... "
        "h1000.bench.test, each name in every class; spec/dns_server.py (dnslib, pinned to CPU 1) answers every "
        "name with 127.0.0.1 after 20 ms, and each client runs in a mount namespace whose /etc/resolv.conf names "
        "it (unshare -m; glibc, c-ares and aiodns all read it). 200 and 404 from nginx (1 KiB bodies), the "
        "timeouts from bench/slow_server.py (aiohttp's server, answers after 5 s), refused from a port nobody "
        "listens on. Same concurrency and a 2 s total timeout per request for all. lurl: `lurl --fetch -q -c N "
        "-t 2 -a list -o file` (c-ares, its default); lurl.map script: lurl.map over io.lines, a session with "
        "connector{limit = N} and timeout{total = 2}, the default (threaded) resolver; aiohttp: a task per URL "
        "behind asyncio.Semaphore(N), TCPConnector(limit=N), ClientTimeout(total=2), ThreadedResolver (its "
        "default); aiohttp + aiodns: the same with AsyncResolver"
        + (f" ({meta['aiodns']})" if meta.get("aiodns") else "") + "; curl: one `curl -Z --parallel-max N -m 2 "
        "-K config` (curl 7.88 has no --url @file); xargs -P + curl: `xargs -P N -n 1 curl -m 2`, a process per "
        "URL, whose peak RSS is the largest single process's (GNU time), not the N alive at once. Every client "
        "reads each body and writes one outcome per URL (status, timeout, refused), checked against what its "
        "path says (bench/urllist.py check): misclassified counts the worst run's wrong or missing outcomes. "
        "Time: each client's own (from reading the list to the last outcome; curl, xargs and lurl --fetch: the "
        "process's wall time); speed ÷ aiohttp's (higher is better).")


def proxy_note(rows, recs, meta):
    """W10: how the clients go through tinyproxy, and how to read its CPU."""
    ids = " and ".join(r["id"] for r in rows if r["server"] == "http-proxy")
    per = sorted({r["proxy"]["connections"] / r["result"]["requests"] for r in recs
                  if r["status"] == "ok" and "proxy" in r and r["result"].get("requests")})
    conns = f"{per[0]:.2f}" + (f"-{per[-1]:.2f}" if per[-1] != per[0] else "") if per else "?"
    return (
        f"{ids}: W1's GETs through {meta.get('tinyproxy', 'tinyproxy')} to the same nginx, started by "
        "spec/interop/proxy_peers.sh (its config: LogLevel Info, a log line per connection and per "
        "request) and pinned to CPU 1 with nginx. tinyproxy answers HTTP/1.0 and closes the client "
        "connection after each response, so every request is a new connection to the proxy and from "
        f"it to nginx, for every client alike (tinyproxy logged {conns} connections per request). "
        "lurl: session{proxy = URL}; curl: -x URL; aiohttp: proxy=URL on each request. "
        "CPU: the user + system CPU time that the client (GNU time, start-up included; on CPU 0), "
        "tinyproxy and nginx's worker (/proc/PID/stat; both on CPU 1) used during the client's run ÷ "
        "the client's measured time, medians of runs: tinyproxy and nginx together near 100% means "
        "CPU 1 was the bound, the client near 100% that the client was. tinyproxy's log is on tmpfs "
        "(it fsyncs after each line). Every request must appear in tinyproxy's log, else the run fails.")


def main():
    rows = load_rows(sys.argv[1])
    with open(sys.argv[2]) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    meta = meta_of(sys.argv[3])
    table = Table(rows, recs, meta)
    ran = [r for r in rows if any(k[0] == r["id"] for k in table.by)]
    lines = [table_row for row in ran for table_row in table.rows_of(row)]
    runs = table.runs

    out = ["## Benchmarks", ""]
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
        f"aiohttp: {meta['aiohttp']}; lua-http: {meta['luahttp']}; hyperfine: {meta['hyperfine']}; "
        f"zcat: {meta['zcat']}" + (f"; node ws: {meta['nodews']}." if "nodews" in meta else ".")
    )
    if meta["only"] != meta["all"] or meta["clients"] != meta["all_clients"] or meta["scale"] != "1":
        out.append("")
        out.append(f"Partial run: workloads {meta['only']}; clients {meta['clients']}"
                   + (f"; requests scaled by {meta['scale']}." if meta["scale"] != "1" else "."))
    out.append("")
    out.append("| workload | client | result | vs ref | CPU us/req | peak RSS |")
    out.append("|---|---|---|---|---|---|")
    for r in lines:
        out.append("| " + " | ".join(x.replace("|", "/") for x in r) + " |")
    out.append("")
    out.append("Notes:")
    out.append("")
    for n in notes_of(ran, recs, meta) + table.partial_failures:
        out.append(f"- {n}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
