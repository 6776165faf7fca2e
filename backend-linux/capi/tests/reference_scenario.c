/* The reference scenario (PROTOCOL section 7) through wcfs.h alone, against
 * a WCFS server mounted at argv[1]; run by tests/tests/capi.rs.
 *
 *   reference_scenario <mountpoint> <join-base> <zurl> <other-zurl> <at1> <at2> <testserver>
 *
 * <mountpoint> is <join-base>/<sha1(zurl)>, where a server of <zurl> is
 * mounted; nothing is mounted for <other-zurl>, which the program joins by
 * autostarting <testserver> (it ends by itself once the program has left
 * it: -autoexit). File 1 has #2 'c1', #3 'd1' at <at1> and
 * #2 'c2' at <at2> (hex tids). To commit, the program prints
 * "commit <blk> <text> [<blk> <text>]..." and reads the new tid (hex) on
 * stdin. It prints "step N ok" as it goes and "PASS" at the end; on the
 * first failure "FAIL line L: ..." and exit status 1.
 *
 * Every step reads two mappings of blocks 2..5: `m`, placed by the library,
 * and `ma`, placed in a range this program reserved (PROT_NONE) between two
 * guard pages. Step 3 plays a VM layer's dirty block under a pin. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wcfs.h"

static const uint64_t F = 1;
static size_t bs;
/* Closed on failure before exit, as a tidy program does (the library's exit
 * handler would say bye on it otherwise). */
static wcfs_conn *g_conn;

static void fail(int line, const char *fmt, ...) {
  va_list ap;
  char err[1024];
  printf("FAIL line %d: ", line);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  wcfs_last_error(err, sizeof err);
  printf(" (last error: %s)\n", err);
  fflush(stdout);
  wcfs_conn_close(g_conn);
  exit(1);
}

#define CHECK(cond, ...) \
  do { \
    if (!(cond)) fail(__LINE__, __VA_ARGS__); \
  } while (0)

/* A call that must succeed. */
#define OK(call) \
  do { \
    wcfs_result r_ = (call); \
    if (r_ != WCFS_OK) fail(__LINE__, "%s: %s", #call, wcfs_result_name(r_)); \
  } while (0)

/* A call that must fail with `code`, its text containing `text`. */
#define FAILS(call, code, text) \
  do { \
    wcfs_result r_ = (call); \
    char e_[1024]; \
    CHECK(r_ == (code), "%s: %s, want %s", #call, wcfs_result_name(r_), #code); \
    wcfs_last_error(e_, sizeof e_); \
    CHECK(strstr(e_, (text)) != NULL, "%s: error %s lacks %s", #call, e_, text); \
  } while (0)

/* The text at the start of block `blk` of mapping m ("" for zeros). */
static const char *tag(const wcfs_mapping *m, uint64_t blk) {
  static char buf[9];
  const char *p = (const char *)wcfs_mapping_addr(m) + (blk - wcfs_mapping_blk_start(m)) * bs;
  memcpy(buf, p, 8);
  buf[8] = 0;
  return buf;
}

static void expect_tags(int line, const wcfs_mapping *m, uint64_t blk, const char *a,
                        const char *b, const char *c) {
  const char *want[3] = {a, b, c};
  for (int i = 0; i < 3; i++) {
    const char *got = tag(m, blk + i);
    if (strcmp(got, want[i]) != 0) fail(line, "#%d: %s, want %s", (int)(blk + i), got, want[i]);
  }
}
#define TAGS(m, blk, a, b, c) expect_tags(__LINE__, m, blk, a, b, c)

/* Whether reading the byte at p faults: the kernel reads it for write(2)
 * and says EFAULT instead of raising a signal. */
static int faults(const void *p) {
  int fds[2];
  ssize_t n;
  if (pipe(fds) != 0) return -1;
  n = write(fds[1], p, 1);
  int e = errno;
  close(fds[0]);
  close(fds[1]);
  return n < 0 && e == EFAULT;
}

/* The pins of f as "blk@rev blk@rev" (revs as at1/at3 names resolved by the caller). */
static void expect_pins(int line, const wcfs_file *f, size_t want_n, const wcfs_pin *want) {
  wcfs_pin got[8];
  size_t n = 99;
  wcfs_result r = wcfs_file_pinned(f, got, 8, &n);
  if (r != WCFS_OK) fail(line, "wcfs_file_pinned: %s", wcfs_result_name(r));
  if (n != want_n) fail(line, "%zu pins, want %zu", n, want_n);
  for (size_t i = 0; i < n; i++)
    if (got[i].blk != want[i].blk || got[i].rev != want[i].rev)
      fail(line, "pin %zu: #%" PRIu64 "@%016" PRIx64 ", want #%" PRIu64 "@%016" PRIx64, i,
           got[i].blk, got[i].rev, want[i].blk, want[i].rev);
}
#define PINS(f, n, ...) \
  do { \
    wcfs_pin w_[] = {{0, 0}, __VA_ARGS__}; \
    expect_pins(__LINE__, f, n, w_ + 1); \
  } while (0)

/* Whether [p, p + len) is still mapped (by anyone): MAP_FIXED_NOREPLACE
 * refuses to map over an existing mapping with EEXIST. */
static int reserved(void *p, size_t len) {
  void *q = mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (q == MAP_FAILED) return errno == EEXIST;
  munmap(q, len);
  return 0;
}

/* Lays a private page (a VM layer's dirty copy) with `text` over p. */
static void lay_private(int line, char *p, const char *text) {
  if (mmap(p, bs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p)
    fail(line, "private page: %s", strerror(errno));
  strcpy(p, text);
}

/* Asks the test to commit; returns the new head. */
static uint64_t commit(const char *changes) {
  char line[128];
  printf("commit %s\n", changes);
  fflush(stdout);
  if (!fgets(line, sizeof line, stdin)) fail(__LINE__, "no answer to commit");
  return strtoull(line, NULL, 16);
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr,
            "usage: %s <mountpoint> <join-base> <zurl> <other-zurl> <at1> <at2> <testserver>\n",
            argv[0]);
    return 2;
  }
  const char *mnt = argv[1], *base = argv[2], *zurl = argv[3], *other = argv[4],
             *testserver = argv[7];
  uint64_t at1 = strtoull(argv[5], NULL, 16), at2 = strtoull(argv[6], NULL, 16), at3, head;
  bs = (size_t)sysconf(_SC_PAGESIZE);
  char buf[4096];

  /* 0. Finding the server: by mountpoint, by zurl, and the failures of join. */
  wcfs_wcfs *w = NULL, *wo = NULL, *wbad = (wcfs_wcfs *)&buf;
  OK(wcfs_open(mnt, &wo));
  CHECK(wcfs_mountpoint(wo, buf, sizeof buf) == strlen(mnt) && strcmp(buf, mnt) == 0,
        "mountpoint %s", buf);
  OK(wcfs_join_under(base, zurl, &w));
  CHECK(wcfs_mountpoint(w, buf, sizeof buf) == strlen(mnt) && strcmp(buf, mnt) == 0,
        "joined at %s, want %s", buf, mnt);
  {
    /* Where join looks by default: the same name under /dev/shm/wcfs. */
    char mp[64], small[10];
    OK(wcfs_mountpoint_for(zurl, mp, sizeof mp));
    const char *hex = strrchr(mnt, '/') + 1;
    CHECK(strlen(mp) == 14 + 40 && strncmp(mp, "/dev/shm/wcfs/", 14) == 0 &&
              strcmp(mp + 14, hex) == 0,
          "mountpoint_for %s, want /dev/shm/wcfs/%s", mp, hex);
    FAILS(wcfs_mountpoint_for(zurl, small, sizeof small), WCFS_ERR_BUFFER_TOO_SMALL,
          "55 bytes needed");
    FAILS(wcfs_mountpoint_for("nosuch://db", mp, sizeof mp), WCFS_ERR_BAD_ZURL,
          "can't normalize zurl with scheme \"nosuch\"");
    FAILS(wcfs_mountpoint_for(NULL, mp, sizeof mp), WCFS_ERR_NULL, "zurl is NULL");
  }
  {
    /* wcfs_join_with: the server already mounted, then the refusals. */
    wcfs_wcfs *w2 = NULL;
    wcfs_join_options o = {0};
    o.autostart = WCFS_AUTOSTART_NO;
    o.base = base;
    OK(wcfs_join_with(zurl, &o, &w2));
    CHECK(wcfs_mountpoint(w2, buf, sizeof buf) == strlen(mnt) && strcmp(buf, mnt) == 0,
          "join_with at %s", buf);
    wcfs_free(w2);
    FAILS(wcfs_join_with(other, &o, &wbad), WCFS_ERR_NOT_MOUNTED,
          "no wcfs server mounted for ");
    CHECK(wbad == NULL, "out not cleared on failure");
    FAILS(wcfs_join_under(base, "nosuch://db", &wbad), WCFS_ERR_BAD_ZURL,
          "can't normalize zurl with scheme");
    o.autostart = 7;
    FAILS(wcfs_join_with(zurl, &o, &wbad), WCFS_ERR_INVALID_ARG, "autostart 7");
    /* Autostart without an executable ($WCFS_SERVER is unset here), with
     * one that exits at once, with one serving another database. */
    o.autostart = WCFS_AUTOSTART_YES;
    FAILS(wcfs_join_with(other, &o, &wbad), WCFS_ERR_SERVER_START, "none to start");
    o.server = "/bin/false";
    FAILS(wcfs_join_with(other, &o, &wbad), WCFS_ERR_SERVER_START, "/bin/false exited");
    const char *mismatch[] = {"--zurl", zurl};
    o.server = testserver;
    o.options = mismatch;
    o.n_options = 2;
    FAILS(wcfs_join_with(other, &o, &wbad), WCFS_ERR_ZURL_MISMATCH, zurl);
    o.n_options = 1;
    o.options = NULL;
    FAILS(wcfs_join_with(other, &o, &wbad), WCFS_ERR_NULL, "options is NULL");
    /* Autostart of a server for `other`: it answers, and it ends by itself
     * once its last client is gone. */
    o.n_options = 0;
    o.start_timeout_ms = 30000;
    OK(wcfs_join_with(other, &o, &w2));
    uint64_t h2;
    OK(wcfs_head_at(w2, &h2));
    wcfs_conn *c = NULL;
    OK(wcfs_connect(w2, h2, &c));
    OK(wcfs_conn_close(c));
    wcfs_conn_free(c);
    wcfs_free(w2);
  }
  FAILS(wcfs_open("/nonexistent/wcfs", &wbad), WCFS_ERR_IO, "wcfs /nonexistent/wcfs: ");
  FAILS(wcfs_join_under(base, NULL, &wbad), WCFS_ERR_NULL, "zurl is NULL");
  OK(wcfs_head_at(w, &head));
  CHECK(head == at2, "head %016" PRIx64 ", want at2 %016" PRIx64, head, at2);
  {
    /* A connection with limits of its own, as of at1 while head is at2. */
    wcfs_conn *c2 = NULL;
    OK(wcfs_connect_with(wo, at1, 1, 4, &c2));
    CHECK(wcfs_conn_at(c2) == at1 && wcfs_conn_id(c2) > 0, "connect_with");
    OK(wcfs_conn_close(c2));
    OK(wcfs_conn_close(c2));
    wcfs_file *fc = (wcfs_file *)&buf;
    FAILS(wcfs_conn_open(c2, F, &fc), WCFS_ERR_CONN_CLOSED, "connection closed");
    wcfs_conn_free(c2);
  }
  wcfs_free(wo);
  printf("step 0 ok\n");

  /* 1. */
  wcfs_conn *conn = NULL;
  wcfs_file *fh = NULL, *fh2 = NULL;
  wcfs_mapping *m = NULL, *past = NULL, *ma = NULL, *mbad = NULL;
  wcfs_stats st;
  OK(wcfs_connect(w, at1, &conn));
  g_conn = conn;
  CHECK(wcfs_conn_at(conn) == at1, "conn at %016" PRIx64, wcfs_conn_at(conn));
  OK(wcfs_conn_open(conn, F, &fh));
  CHECK(wcfs_file_oid(fh) == F, "oid");
  CHECK(wcfs_file_blksize(fh) == bs, "blksize %" PRIu64, wcfs_file_blksize(fh));
  OK(wcfs_file_mmap(fh, 2, 3, &m));
  CHECK(wcfs_mapping_len(m) == 3 * bs, "len %zu", wcfs_mapping_len(m));
  CHECK(wcfs_mapping_blk_start(m) == 2 && wcfs_mapping_blk_stop(m) == 5, "blocks");
  CHECK(!wcfs_mapping_is_faulting(m), "faulting");
  PINS(fh, 0);
  /* The caller's range: 3 blocks between two guard pages. */
  char *res = mmap(NULL, 5 * bs, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(res != MAP_FAILED, "reserve: %s", strerror(errno));
  char *ra = res + bs;
  FAILS(wcfs_file_mmap_at(fh, 2, 3, ra + 1, 3 * bs, &mbad), WCFS_ERR_BAD_ADDRESS,
        "not page-aligned");
  FAILS(wcfs_file_mmap_at(fh, 2, 3, ra, 2 * bs, &mbad), WCFS_ERR_BAD_ADDRESS,
        "for a mapping of");
  FAILS(wcfs_file_mmap_at(fh, 2, 3, wcfs_mapping_addr(m), 3 * bs, &mbad), WCFS_ERR_BAD_ADDRESS,
        "overlaps a mapping of this connection");
  FAILS(wcfs_file_mmap_at(fh, 2, 3, NULL, 3 * bs, &mbad), WCFS_ERR_BAD_ADDRESS, "bad address 0x0");
  CHECK(mbad == NULL && faults(ra) == 1, "a refused range was touched");
  OK(wcfs_file_mmap_at(fh, 2, 3, ra, 3 * bs, &ma));
  CHECK(wcfs_mapping_addr(ma) == ra && wcfs_mapping_len(ma) == 3 * bs, "mmap_at placement");
  CHECK(wcfs_mapping_blk_start(ma) == 2 && wcfs_mapping_blk_stop(ma) == 5, "mmap_at blocks");
  OK(wcfs_conn_stats(conn, &st));
  CHECK(st.pins == 0 && st.unpins == 0 && st.acks == 0 && st.resyncs == 0, "stats not zero");
  CHECK(wcfs_stats_pin_time_quantile(&st, 0.5) == 0, "quantile of nothing");
  printf("step 1 ok\n");

  /* 2. Reading #2 faults into head, which has c2: our connection is pinned first. */
  CHECK(strcmp(tag(m, 2), "c1") == 0, "#2: %s", tag(m, 2));
  PINS(fh, 1, {2, at1});
  TAGS(m, 2, "c1", "d1", "");
  TAGS(ma, 2, "c1", "d1", "");
  {
    char got[3] = {0};
    OK(wcfs_mapping_read(ma, 1 * bs, got, 2));
    CHECK(strcmp(got, "d1") == 0, "wcfs_mapping_read #3: %s", got);
    FAILS(wcfs_mapping_read(ma, 3 * bs - 1, got, 2), WCFS_ERR_BAD_RANGE, "read: ");
  }
  CHECK(wcfs_conn_down_reason(conn, buf, sizeof buf) == 0, "down while up: %s", buf);
  printf("step 2 ok\n");

  /* 3. */
  /* In ma, #3 gets a VM layer's private page first: marked dirty before the
   * page is laid, so the pin the commit brings leaves the page alone. */
  OK(wcfs_mapping_mark_dirty(ma, 3));
  lay_private(__LINE__, ra + bs, "dirty");
  at3 = commit("3 d3 4 e3");
  CHECK(at3 > at2, "at3 %016" PRIx64, at3);
  TAGS(m, 2, "c1", "d1", "");
  PINS(fh, 2, {2, at1}, {3, at1});
  {
    wcfs_pin one[1];
    size_t n = 0;
    FAILS(wcfs_file_pinned(fh, one, 1, &n), WCFS_ERR_BUFFER_TOO_SMALL, "2 pins, room for 1");
    CHECK(n == 2, "count %zu with a small buffer", n);
  }
  TAGS(ma, 2, "c1", "dirty", "");
  /* The page is discarded: remapped, the block shows the pinned revision. */
  CHECK(munmap(ra + bs, bs) == 0, "discard the private page");
  OK(wcfs_mapping_remap_blk(ma, 3));
  TAGS(ma, 2, "c1", "d1", "");
  printf("step 3 ok\n");

  /* 4. */
  OK(wcfs_conn_resync(conn, at2));
  CHECK(wcfs_conn_at(conn) == at2, "at after resync");
  TAGS(m, 2, "c2", "d1", "");
  TAGS(ma, 2, "c2", "d1", "");
  printf("step 4 ok\n");

  /* 5. */
  OK(wcfs_conn_resync(conn, at3));
  PINS(fh, 0);
  TAGS(m, 2, "c2", "d3", "e3");
  TAGS(ma, 2, "c2", "d3", "e3");
  /* Three pins to at1 (#2, #3, and #4 that at3 created), all three back to
   * head by the resyncs, each acked. */
  OK(wcfs_conn_stats(conn, &st));
  printf("stats pins=%" PRIu64 " unpins=%" PRIu64 " acks=%" PRIu64 " naks=%" PRIu64
         " rev_opens=%" PRIu64 " rev_hits=%" PRIu64 " remaps=%" PRIu64 " resyncs=%" PRIu64
         " pin_p50_ns<=%" PRIu64 " pin_p99_ns<=%" PRIu64 "\n",
         st.pins, st.unpins, st.acks, st.naks, st.rev_opens, st.rev_hits, st.remaps, st.resyncs,
         wcfs_stats_pin_time_quantile(&st, 0.5), wcfs_stats_pin_time_quantile(&st, 0.99));
  CHECK(st.pins == 3 && st.unpins == 3 && st.naks == 0 && st.resyncs == 2, "stats counters");
  CHECK(st.acks == st.pins + st.unpins, "acks %" PRIu64, st.acks);
  CHECK(st.rev_opens >= 1 && st.remaps >= 4, "rev_opens/remaps");
  {
    uint64_t timed = 0;
    for (int i = 0; i < WCFS_PIN_TIME_BUCKETS; i++) timed += st.pin_time_ns[i];
    CHECK(timed >= 2 && timed <= st.acks, "%" PRIu64 " pin times", timed);
  }
  CHECK(wcfs_stats_pin_time_quantile(&st, 0.5) > 0 &&
            wcfs_stats_pin_time_quantile(&st, 0.5) <=
                wcfs_stats_pin_time_quantile(&st, 0.99),
        "quantiles");
  printf("step 5 ok\n");

  /* 6. A mapping wholly past the end; a second handle opened and closed. */
  OK(wcfs_file_mmap(fh, 10, 2, &past));
  CHECK(strcmp(tag(past, 10), "") == 0 && strcmp(tag(past, 11), "") == 0, "past the end");
  OK(wcfs_conn_open(conn, F, &fh2));
  OK(wcfs_file_close(fh2));
  OK(wcfs_file_close(fh2));
  wcfs_mapping *bad = (wcfs_mapping *)&buf;
  FAILS(wcfs_file_mmap(fh2, 0, 1, &bad), WCFS_ERR_FILE_CLOSED, "file already closed");
  CHECK(bad == NULL, "out not cleared on failure");
  wcfs_file_free(fh2);
  TAGS(m, 2, "c2", "d3", "e3");
  FAILS(wcfs_mapping_mark_dirty(m, 7), WCFS_ERR_BAD_RANGE, "mark_dirty #7");
  /* The virtmem flow on the library's own mapping: dirty #3, lay a private
   * page over it, drop the page, remap. */
  char *blk3 = (char *)wcfs_mapping_addr(m) + bs;
  OK(wcfs_mapping_mark_dirty(m, 3));
  CHECK(mmap(blk3, bs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
            blk3,
        "private page: %s", strerror(errno));
  strcpy(blk3, "dirty");
  TAGS(m, 2, "c2", "dirty", "e3");
  OK(wcfs_mapping_remap_blk(m, 3));
  TAGS(m, 2, "c2", "d3", "e3");
  /* Unmapping a caller's range leaves it reserved to the caller, inaccessible;
   * the caller maps into it again. */
  OK(wcfs_mapping_unmap(ma));
  CHECK(wcfs_mapping_is_faulting(ma) && faults(ra) == 1 && faults(ra + 2 * bs) == 1,
        "unmapped range readable");
  CHECK(reserved(ra, 3 * bs), "unmapped range given back to the OS");
  wcfs_mapping_free(ma);
  OK(wcfs_file_mmap_at(fh, 2, 3, ra, 3 * bs, &ma));
  TAGS(ma, 2, "c2", "d3", "e3");
  printf("step 6 ok\n");

  /* 7. Going back is forbidden and brings the connection down. */
  FAILS(wcfs_conn_resync(conn, at2), WCFS_ERR_GOING_BACK, "going back in history is forbidden");
  {
    /* The full context, and the copy rules of wcfs_last_error. */
    char full[1024], small[8], want[1200], wmnt[1024];
    size_t n = wcfs_last_error(NULL, 0);
    CHECK(wcfs_last_error(full, sizeof full) == n && strlen(full) == n, "length %zu", n);
    /* The connection came from join: its context names the joined path. */
    CHECK(wcfs_mountpoint(w, wmnt, sizeof wmnt) < sizeof wmnt, "mountpoint too long");
    snprintf(want, sizeof want, "wcfs %s: conn%" PRIu64 " @%016" PRIx64 ": resync", wmnt,
             wcfs_conn_id(conn), at3);
    CHECK(strncmp(full, want, strlen(want)) == 0, "context: %s, want %s...", full, want);
    CHECK(wcfs_last_error(small, sizeof small) == n && strlen(small) == 7 &&
              strncmp(small, full, 7) == 0,
          "cut: %s", small);
  }
  wcfs_file *fh3 = (wcfs_file *)&buf;
  FAILS(wcfs_conn_open(conn, F, &fh3), WCFS_ERR_CONN_CLOSED, "connection closed");
  CHECK(fh3 == NULL, "out not cleared on failure");
  CHECK(wcfs_mapping_is_faulting(m) && wcfs_mapping_is_faulting(past), "not faulting");
  CHECK(!wcfs_mapping_is_exposed(m) && !wcfs_mapping_is_exposed(past), "exposed");
  CHECK(wcfs_conn_down_reason(conn, buf, sizeof buf) > 0 &&
            strstr(buf, "going back in history is forbidden") != NULL,
        "down reason: %s", buf);
  FAILS(wcfs_mapping_read(m, 0, buf, 1), WCFS_ERR_CONN_CLOSED, "read: connection closed");
  CHECK(faults(wcfs_mapping_addr(m)) == 1 && faults(blk3) == 1, "#2/#3 readable after down");
  CHECK(faults(wcfs_mapping_addr(past)) == 1, "#10 readable after down");
  CHECK(wcfs_mapping_is_faulting(ma) && faults(ra) == 1 && faults(ra + 2 * bs) == 1,
        "caller's range readable after down");
  /* Remapping a block of a faulting mapping keeps it faulting. */
  OK(wcfs_mapping_remap_blk(m, 3));
  CHECK(faults(blk3) == 1, "#3 readable after remap on a down connection");
  printf("step 7 ok\n");

  /* Release: close (already down: OK), unmap, free in any order. */
  OK(wcfs_conn_close(conn));
  wcfs_conn_free(conn);
  g_conn = NULL;
  OK(wcfs_mapping_unmap(past));
  OK(wcfs_mapping_unmap(past));
  FAILS(wcfs_mapping_mark_dirty(past, 10), WCFS_ERR_NO_SUCH_MAPPING, "mark_dirty #10: no such mapping");
  wcfs_mapping_free(past);
  wcfs_file_free(fh);
  wcfs_mapping_free(m);
  wcfs_mapping_free(ma);
  CHECK(reserved(ra, 3 * bs) && faults(ra) == 1, "caller's range after the last free");
  CHECK(faults(res) == 1 && faults(res + 4 * bs) == 1, "guard pages touched");
  CHECK(munmap(res, 5 * bs) == 0 && !reserved(res, 5 * bs), "release the reservation");
  wcfs_free(w);
  wcfs_free(NULL);
  wcfs_conn_free(NULL);
  wcfs_file_free(NULL);
  wcfs_mapping_free(NULL);
  printf("PASS\n");
  return 0;
}
