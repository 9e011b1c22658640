/* The lurl command: runs a Lua script as the main task of a runtime.
 * It is a client of lurl.h and nothing else. */
#include <stdio.h>
#include <string.h>

#include <lurl.h>

enum { EXIT_OK = 0, EXIT_SCRIPT = 1, EXIT_USAGE = 2 };

static const char usage[] =
    "usage: lurl [options] [script [args...]]\n"
    "  -e CODE        run CODE (may be given more than once; runs before script)\n"
    "  -              run the script read from standard input\n"
    "  -v, --version  print the versions of lurl and its libraries\n"
    "  -h, --help     print this help\n"
    "A script runs as the main task on the event loop; lurl exits when it and\n"
    "every task it spawned are done. Exit status: 0 success, 1 script error,\n"
    "2 usage error.\n";

typedef struct {
    int failed;
} run_state;

static void on_done(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)nres;
    run_state *st = ud;
    if (ok) return;
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "lurl: %s\n", msg ? msg : "(error object is not a string)");
    st->failed = 1;
    uv_stop(lurl_loop(rt));
}

/* Run one chunk to completion (including the tasks it spawns). */
static int run_chunk(lurl_runtime *rt, const char *code, const char *file, run_state *st) {
    if (code)
        lurl_do_string(rt, code, "=(command line)", on_done, st);
    else
        lurl_do_file(rt, file, on_done, st);
    if (!st->failed) lurl_run(rt);
    return !st->failed;
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-v") || !strcmp(a, "--version")) {
            char buf[256];
            lurl_versions(buf, sizeof buf);
            puts(buf);
            return EXIT_OK;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (!strcmp(a, "-e")) {
            if (++i == argc) {
                fprintf(stderr, "lurl: -e needs an argument\n%s", usage);
                return EXIT_USAGE;
            }
            continue;
        }
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        fprintf(stderr, "lurl: unknown option '%s'\n%s", a, usage);
        return EXIT_USAGE;
    }
    int script = i < argc ? i : 0;

    lurl_runtime *rt = lurl_new(NULL);
    if (!rt) {
        fprintf(stderr, "lurl: cannot create the runtime\n");
        return EXIT_SCRIPT;
    }
    lurl_set_args(rt, argc, argv, script);
    run_state st = {0};
    int ok = 1;
    for (int j = 1; ok && j < i; j++)
        if (!strcmp(argv[j], "-e")) ok = run_chunk(rt, argv[++j], NULL, &st);
    int ran_code = i > 1 && ok;
    if (ok && script)
        ok = run_chunk(rt, NULL, argv[script], &st);
    else if (ok && !ran_code)
        ok = run_chunk(rt, NULL, "-", &st);
    if (ok && lurl_unjoined_failures(rt) > 0) ok = 0;
    lurl_free(rt);
    return ok ? EXIT_OK : EXIT_SCRIPT;
}
