/* The lurl command: runs a Lua script as the main task of a runtime.
 * It is a client of lurl.h and nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lurl.h>

enum { EXIT_OK = 0, EXIT_SCRIPT = 1, EXIT_USAGE = 2, GO_ON = -1 };

static const char usage[] =
    "usage: lurl [options] [script [args...]]\n"
    "  -e CODE        run CODE (may be given more than once; runs before script)\n"
    "  -              run the script read from standard input (the default without\n"
    "                 script and -e when standard input is not a terminal)\n"
    "  -v, --version  print the versions of lurl and its libraries, and its licence\n"
    "  --fetch ...    fetch URLs (a list as JSON lines, one like curl); first argument\n"
    "                 only: lurl --fetch --help tells more\n"
    "  -h, --help     print this help\n"
    "A script runs as the main task on the event loop; lurl exits when it and\n"
    "every task it spawned are done. Exit status: 0 success, 1 script error,\n"
    "2 usage error, n after os.exit(n).\n";

typedef struct {
    int failed;
} run_state;

static void on_done(lurl_runtime *rt, int ok, lua_State *L, int nres, void *ud) {
    (void)nres;
    run_state *st = ud;
    if (ok) return;
    st->failed = 1;
    uv_stop(lurl_loop(rt));
    /* os.exit unwinds its task with an error, and a raised nil is how lua
     * scripts (busted among them) fail without a message: as in lua, both
     * end the run quietly. */
    if (lurl_exit_status(rt) >= 0 || lua_isnil(L, -1)) return;
    fprintf(stderr, "lurl: %s\n", lua_tostring(L, -1));
}

/* Run one chunk to completion (including the tasks it spawns). Returns 0 when
 * it failed or a script called os.exit: nothing more may run then. */
static int run_chunk(lurl_runtime *rt, const char *code, const char *file, run_state *st) {
    if (code)
        lurl_do_string(rt, code, "=(command line)", on_done, st);
    else
        lurl_do_file(rt, file, on_done, st);
    if (!st->failed && lurl_exit_status(rt) < 0) lurl_run(rt);
    return !st->failed && lurl_exit_status(rt) < 0;
}

static int print_versions(void) {
    int n = lurl_versions(NULL, 0);
    char *buf = malloc((size_t)n + 1);
    if (!buf) return EXIT_SCRIPT;
    lurl_versions(buf, (size_t)n + 1);
    puts(buf);
    free(buf);
    return EXIT_OK;
}

/* The fetch command is Lua (lua/lurl/cli/fetch.lua); its arguments are
 * arg[1..], as a script's would be. */
static const char fetch_chunk[] = "os.exit(require('lurl.cli.fetch').main(arg))";

/* The options before the script. Sets *first to the script's index (argc when
 * there is none) and *has_code when -e was given; returns GO_ON or the exit
 * status. --fetch, as the first argument only, is the command (*first = 1):
 * an option can never be taken for a script's file name. */
static int parse_options(int argc, char **argv, int *first, int *has_code, int *fetch) {
    int i = 1;
    if (argc > 1 && !strcmp(argv[1], "--fetch")) {
        *fetch = 1;
        *first = 1;
        return GO_ON;
    }
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-v") || !strcmp(a, "--version")) return print_versions();
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (!strcmp(a, "-e")) {
            if (++i == argc) {
                fprintf(stderr, "lurl: -e needs an argument\n%s", usage);
                return EXIT_USAGE;
            }
            *has_code = 1;
            continue;
        }
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        fprintf(stderr, "lurl: unknown option '%s'\n%s", a, usage);
        return EXIT_USAGE;
    }
    *first = i;
    return GO_ON;
}

/* Run the -e chunks, then the script (stdin when there is neither). */
static int run_script(lurl_runtime *rt, char **argv, int first, int script, int has_code,
                      run_state *st) {
    int ok = 1;
    for (int j = 1; ok && j < first; j++)
        if (!strcmp(argv[j], "-e")) ok = run_chunk(rt, argv[++j], NULL, st);
    if (ok && (script || !has_code)) ok = run_chunk(rt, NULL, script ? argv[script] : "-", st);
    return ok;
}

/* Run the script (or the fetch command) and return the exit status. */
static int run(int argc, char **argv, int first, int has_code, int fetch) {
    int script = first < argc ? first : 0;
    lurl_runtime *rt = lurl_new(NULL);
    if (!rt) {
        fprintf(stderr, "lurl: cannot create the runtime\n");
        return EXIT_SCRIPT;
    }
    lurl_set_args(rt, argc, argv, script);
    run_state st = {0};
    int ok = fetch ? run_chunk(rt, fetch_chunk, NULL, &st)
                   : run_script(rt, argv, first, script, has_code, &st);
    int status = lurl_exit_status(rt);
    if (status < 0) status = ok && lurl_unjoined_failures(rt) == 0 ? EXIT_OK : EXIT_SCRIPT;
    lurl_free(rt);
    return status;
}

int main(int argc, char **argv) {
    int first = argc, has_code = 0, fetch = 0;
    int status = parse_options(argc, argv, &first, &has_code, &fetch);
    if (status != GO_ON) return status;
    /* Nothing to run and a person at the terminal: lua and python would start
     * a REPL, which lurl does not have, and waiting for a script to be typed
     * looks like a hang. So, as curl does when given nothing to do, it is a
     * usage error: the usage on stderr and status 2. A pipe or file on stdin
     * is still run as the script. */
    if (!fetch && first == argc && !has_code && isatty(STDIN_FILENO)) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    return run(argc, argv, first, has_code, fetch);
}
