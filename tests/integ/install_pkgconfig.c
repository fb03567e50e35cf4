/*
 * install_pkgconfig.c -- `make install` gives a tree a C user can build on.
 *
 * From the source tree ($XICHAN_SRCDIR, else the current directory) it runs
 *     make install DESTDIR=<tmp> PREFIX=/usr [BUILD=$BUILD]
 * then checks, against the staged tree:
 *   - the files are where mk/install.mk says, the library's dev symlink and
 *     the man pages' alias symlinks are symlinks, nothing carries DESTDIR;
 *   - the systemd unit's ExecStart= is the installed xichand (Type=notify),
 *     and the bash completion loads and completes a command;
 *   - the README's C example (the ```c block of README.md), compiled with
 *     `pkg-config --cflags --libs xichan` (PKG_CONFIG_SYSROOT_DIR=<tmp>),
 *     prints "got hello" against the harness's daemon -- linked to the
 *     shared library, and again statically with `pkg-config --static`, which
 *     checks the Libs.private and Requires.private lines, once with the
 *     queue "jobs" the first run left (XICHAN_EEXIST handled) and once
 *     without;
 *   - the installed xichanctl runs, and every installed page renders with
 *     `man -l` (or mandoc), and `man -M` finds pages by name;
 *   - make uninstall leaves no file behind.
 * This is what keeps the README's example compiling.
 *
 * Under a sanitizer build (BUILD=build-asan, as `make asan` runs it) the
 * installed library is instrumented, so the example is compiled with the
 * same -fsanitize flags.  Skips (77) without pkg-config, make or a source
 * tree.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define EX_SANITIZE "-fsanitize=address,undefined -fno-omit-frame-pointer"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EX_SANITIZE "-fsanitize=address,undefined -fno-omit-frame-pointer"
#endif
#endif
#ifndef EX_SANITIZE
#define EX_SANITIZE ""
#endif

static char src[PATH_MAX], tmp[64], cmd[8192];

/* The staged tree goes at exit, whether the test passed or not (the logs
 * of a failed step are printed first). */
static void remove_tmp(void)
{
    char rm[128];

    if (tmp[0] && strncmp(tmp, "/tmp/xichan-inst.", 17) == 0) {
        snprintf(rm, sizeof(rm), "rm -rf '%s'", tmp);
        if (system(rm) != 0)
            fprintf(stderr, "note: could not remove %s\n", tmp);
    }
}

/* Runs cmd with sh -c; returns its exit status (128 + signal if killed). */
static int sh(const char *what)
{
    int st;

    fflush(NULL);
    st = system(what);
    if (st == -1)
        xt__fail(__FILE__, __LINE__, "system(%s): %s", what, strerror(errno));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int have(const char *prog)
{
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
    return sh(cmd) == 0;
}

/* Runs a command whose output went to tmp/<log>; prints the log if it failed. */
static void run_logged(const char *what, const char *log)
{
    char show[256];

    if (sh(what) != 0) {
        snprintf(show, sizeof(show), "cat '%s/%s' >&2", tmp, log);
        (void)sh(show);
        xt__fail(__FILE__, __LINE__, "failed: %s", what);
    }
}

static void find_src(void)
{
    const char *env = getenv("XICHAN_SRCDIR");
    char probe[PATH_MAX + 32];
    struct stat st;

    if (env && *env)
        snprintf(src, sizeof(src), "%s", env);
    else if (!getcwd(src, sizeof(src)))
        xt_skip("cannot read the current directory");
    snprintf(probe, sizeof(probe), "%s/mk/install.mk", src);
    if (stat(probe, &st) != 0)
        xt_skip("no source tree here (set XICHAN_SRCDIR to the repository root)");
    if (strchr(src, '\''))
        xt_skip("the source tree's path contains a quote");
}

/* Copies the first ```c block of README.md to tmp/ex.c. */
static void extract_example(void)
{
    char path[PATH_MAX + 32], line[1024];
    FILE *in, *out;
    int inside = 0, lines = 0;

    snprintf(path, sizeof(path), "%s/README.md", src);
    XT_CHECK((in = fopen(path, "r")) != NULL);
    snprintf(path, sizeof(path), "%s/ex.c", tmp);
    XT_CHECK((out = fopen(path, "w")) != NULL);
    while (fgets(line, sizeof(line), in)) {
        if (!inside && !strncmp(line, "```c", 4) && (line[4] == '\n' || line[4] == '\r')) {
            inside = 1;
        } else if (inside && !strncmp(line, "```", 3)) {
            inside = 2;
            break;
        } else if (inside) {
            fputs(line, out);
            lines++;
        }
    }
    fclose(in);
    XT_CHECK(fclose(out) == 0);
    if (inside != 2 || lines < 5)
        xt__fail(__FILE__, __LINE__, "README.md has no complete ```c block (%d lines)", lines);
}

static void check_file(const char *rel, int want_link)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/usr/%s", tmp, rel);
    if (lstat(path, &st) != 0)
        xt__fail(__FILE__, __LINE__, "not installed: /usr/%s", rel);
    if (want_link ? !S_ISLNK(st.st_mode) : !S_ISREG(st.st_mode))
        xt__fail(__FILE__, __LINE__, "/usr/%s should be a %s", rel,
                 want_link ? "symlink" : "regular file");
}

/* Each page of man/ is installed, a symlink where the source is one. */
static int check_man_pages(void)
{
    char dir[PATH_MAX + 8], rel[512];
    struct dirent *e;
    struct stat st;
    DIR *d;
    int n = 0;

    snprintf(dir, sizeof(dir), "%s/man", src);
    XT_CHECK((d = opendir(dir)) != NULL);
    while ((e = readdir(d))) {
        const char *dot = strrchr(e->d_name, '.');
        char path[PATH_MAX + 300];

        if (!dot || dot[1] < '1' || dot[1] > '8' || dot[2])
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        XT_CHECK(lstat(path, &st) == 0);
        snprintf(rel, sizeof(rel), "share/man/man%c/%s", dot[1], e->d_name);
        check_file(rel, S_ISLNK(st.st_mode));
        n++;
    }
    closedir(d);
    return n;
}

/* Every installed page renders; returns how many did. */
static int render_pages(void)
{
    const char *tool = have("man") ? "man -l" : have("mandoc") ? "mandoc" : NULL;

    if (!tool) {
        printf("note: neither man nor mandoc is installed; pages not rendered\n");
        return 0;
    }
    snprintf(cmd, sizeof(cmd),
             "n=0; for f in '%s'/usr/share/man/man?/*; do "
             "  %s \"$f\" >/dev/null 2>'%s/man.err' || { echo \"does not render: $f\" >&2; "
             "  cat '%s/man.err' >&2; exit 1; }; n=$((n + 1)); done; echo $n >'%s/man.count'",
             tmp, tool, tmp, tmp, tmp);
    XT_EQ_INT(sh(cmd), 0);
    if (!strcmp(tool, "man -l")) {
        /* By name, as a user looks them up: the layout is what man expects. */
        snprintf(cmd, sizeof(cmd),
                 "man -M '%s/usr/share/man' 1 xichanctl | grep -q 'inspect' && "
                 "man -M '%s/usr/share/man' 3 xichan_queue_put | grep -q 'xichan_queue_create' && "
                 "man -M '%s/usr/share/man' 8 xichand >/dev/null",
                 tmp, tmp, tmp);
        XT_EQ_INT(sh(cmd), 0);
    }
    return 1;
}

static void run_example(const char *bin)
{
    char out[4096];

    XT_EQ_INT(xt_sh(out, sizeof(out), "LD_LIBRARY_PATH='%s/usr/lib' '%s/%s'", tmp, tmp, bin), 0);
    if (!strstr(out, "got hello"))
        xt__fail(__FILE__, __LINE__, "%s printed '%s', expected 'got hello ...'", bin, out);
}

/* The example creates the named queue "jobs": remove it before a second run. */
static void drop_jobs_queue(void)
{
    xichan_client *cl;
    xichan_queue_id q;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_open(cl, "jobs", &q));
    XT_OK(xichan_queue_destroy(cl, q));
    xichan_client_close(cl);
}

int main(void)
{
    const char *build = getenv("BUILD");
    char pc[512];
    int pages;

    find_src();
    if (!have("pkg-config"))
        xt_skip("pkg-config is not installed (apt-get install pkg-config)");
    if (!have("make") || !have("cc"))
        xt_skip("make or cc is not installed");
    snprintf(tmp, sizeof(tmp), "/tmp/xichan-inst.XXXXXX");
    XT_CHECK(mkdtemp(tmp) != NULL);
    atexit(remove_tmp);

    /* BUILD names the build under test (build-asan under `make asan`). */
    snprintf(cmd, sizeof(cmd),
             "make -C '%s' --no-print-directory install DESTDIR='%s' PREFIX=/usr%s%s >'%s/make.log' 2>&1",
             src, tmp, build && *build ? " BUILD=" : "", build && *build ? build : "", tmp);
    run_logged(cmd, "make.log");

    check_file("bin/xichand", 0);
    check_file("bin/xichanctl", 0);
    check_file("lib/libxichan.so.0", 0);
    check_file("lib/libxichan.so", 1);
    check_file("lib/libxichan.a", 0);
    check_file("include/xichan.h", 0);
    check_file("lib/pkgconfig/xichan.pc", 0);
    check_file("lib/systemd/system/xichand@.service", 0);
    check_file("lib/tmpfiles.d/xichan.conf", 0);
    check_file("share/bash-completion/completions/xichanctl", 0);
    /* The unit runs the installed daemon (its ExecStart from PREFIX), as
     * Type=notify; the completion loads in a plain bash and completes. */
    snprintf(cmd, sizeof(cmd),
             "grep -qx 'ExecStart=/usr/bin/xichand --foreground --name %%i --runtime-dir /run/xichan' "
             "'%s/usr/lib/systemd/system/xichand@.service' && "
             "grep -qx 'Type=notify' '%s/usr/lib/systemd/system/xichand@.service' && "
             "bash -c '. \"$0\" && COMP_WORDS=(xichanctl pu) COMP_CWORD=1 && _xichanctl && "
             "[ \"${COMPREPLY[*]}\" = \"put purge\" ]' "
             "'%s/usr/share/bash-completion/completions/xichanctl'",
             tmp, tmp, tmp);
    XT_EQ_INT(sh(cmd), 0);
    pages = check_man_pages();
    XT_CHECK(pages > 10);
    snprintf(cmd, sizeof(cmd), "grep -rlF '%s' '%s/usr/lib/pkgconfig' '%s/usr/share/man' && exit 1; "
             "[ \"$(readlink '%s/usr/lib/libxichan.so')\" = libxichan.so.0 ]", tmp, tmp, tmp, tmp);
    XT_EQ_INT(sh(cmd), 0); /* no staging path leaked into a file; relative dev link */

    xt_start_daemon(NULL);
    extract_example();
    snprintf(pc, sizeof(pc), "PKG_CONFIG_PATH='%s/usr/lib/pkgconfig' PKG_CONFIG_SYSROOT_DIR='%s' "
             "pkg-config", tmp, tmp);
    snprintf(cmd, sizeof(cmd), "cc %s -o '%s/ex' '%s/ex.c' $(%s --cflags --libs xichan) "
             ">'%s/cc.log' 2>&1", EX_SANITIZE, tmp, tmp, pc, tmp);
    run_logged(cmd, "cc.log");
    run_example("ex");
    /* msgpack-c comes through its own .pc (Requires.private), not a hard-coded -l. */
    snprintf(cmd, sizeof(cmd), "%s --print-requires-private xichan | grep -qE '^msgpack(-c)?$' && "
             "! grep -q 'lmsgpackc' '%s/usr/lib/pkgconfig/xichan.pc'", pc, tmp);
    XT_EQ_INT(sh(cmd), 0);
    /* Static: the archive needs what Libs.private lists (msgpack-c, pthreads). */
    snprintf(cmd, sizeof(cmd), "cc %s -o '%s/ex-static' '%s/ex.c' $(%s --cflags xichan) "
             "$(%s --static --libs xichan | sed 's/-lxichan /-Wl,-Bstatic -lxichan -Wl,-Bdynamic /') "
             ">'%s/cc.log' 2>&1", EX_SANITIZE, tmp, tmp, pc, pc, tmp);
    run_logged(cmd, "cc.log");
    /* The queue "jobs" the first run made is still there: the example uses
     * it (it once ignored XICHAN_EEXIST, printed nothing and exited 0). */
    run_example("ex-static");
    drop_jobs_queue();
    run_example("ex-static");

    /* The installed CLI is self-contained (libxichan.a is linked in). */
    snprintf(cmd, sizeof(cmd), "'%s/usr/bin/xichanctl' list >/dev/null", tmp);
    XT_EQ_INT(sh(cmd), 0);
    render_pages();

    snprintf(cmd, sizeof(cmd), "make -C '%s' --no-print-directory uninstall DESTDIR='%s' PREFIX=/usr "
             ">'%s/make.log' 2>&1", src, tmp, tmp);
    run_logged(cmd, "make.log");
    snprintf(cmd, sizeof(cmd), "left=$(find '%s/usr' ! -type d); [ -z \"$left\" ] || "
             "{ echo \"left after uninstall: $left\" >&2; exit 1; }", tmp);
    XT_EQ_INT(sh(cmd), 0);

    printf("install_pkgconfig: make install/uninstall, pkg-config build of the README example "
           "(shared and static), %d man pages\n", pages);
    return 0;
}
