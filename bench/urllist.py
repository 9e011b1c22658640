# W14's URL list and its answer key. Each URL says what it should come to by
# its path: /urllist/ok (nginx, 200), /urllist/missing (nginx, 404),
# /urllist/slow (bench/slow_server.py, answers after the clients' timeout:
# a timeout) and /urllist/refused (a port nobody listens on: refused).
#
#   python3 bench/urllist.py make N NAMES NGINX_PORT SLOW_PORT REFUSED_PORT > urls.txt
#   python3 bench/urllist.py check urls.txt OUTCOMES
#
# make: N URLs, 80% ok, 10% missing, 5% slow, 5% refused, over the names
# h1.bench.test ... hNAMES.bench.test (each name gets every class), in a
# shuffled order (the same every time).
# check: OUTCOMES has one "URL OUTCOME" line per URL as a client saw it:
# the status, "timeout", "refused" or "error:WHAT". Prints one JSON line:
# urls, outcomes, mismatched (URLs whose outcome is not the expected one, or
# with no line or more than one) and the first few mismatches as examples.
import collections
import json
import random
import sys

# 20 slots: 16 ok, 2 missing, 1 slow, 1 refused
SLOTS = ["ok"] * 16 + ["missing"] * 2 + ["slow", "refused"]
EXPECTED = {"ok": "200", "missing": "404", "slow": "timeout", "refused": "refused"}


def make(n, names, nginx_port, slow_port, refused_port):
    port = {"ok": nginx_port, "missing": nginx_port, "slow": slow_port, "refused": refused_port}
    urls = []
    for i in range(n):
        host, round_ = i % names, i // names
        cls = SLOTS[(host + round_) % len(SLOTS)]   # a name's URLs go through every class
        urls.append(f"http://h{host + 1}.bench.test:{port[cls]}/urllist/{cls}?i={i}")
    random.Random(14).shuffle(urls)
    sys.stdout.write("".join(u + "\n" for u in urls))


def expected(url):
    return EXPECTED[url.split("/urllist/", 1)[1].split("?", 1)[0]]


def check(list_path, outcomes_path):
    with open(list_path) as f:
        urls = [line.strip() for line in f if line.strip()]
    seen = collections.defaultdict(list)
    with open(outcomes_path) as f:
        for line in f:
            url, _, outcome = line.strip().partition(" ")
            if url:
                seen[url].append(outcome)
    bad = collections.Counter()
    examples = []
    for url in urls:
        got = seen.pop(url, [])
        want = expected(url)
        what = None
        if len(got) != 1:
            what = f"{want}->{len(got)} lines"
        elif got[0] != want:
            what = f"{want}->{got[0]}"
        if what:
            bad[what] += 1
            if len(examples) < 3:
                examples.append(f"{url} {what}")
    extra = sum(len(v) for v in seen.values())   # lines for URLs not in the list
    if extra:
        bad["not in the list"] += extra
    print(json.dumps({"urls": len(urls), "mismatched": sum(bad.values()), "kinds": dict(bad),
                      "examples": examples}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(*(int(a) for a in sys.argv[2:7]))
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: urllist.py make N NAMES NGINX_PORT SLOW_PORT REFUSED_PORT | check LIST OUTCOMES")
