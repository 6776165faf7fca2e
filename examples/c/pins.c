/* A connection at a revision keeps showing that revision's bytes while
 * another writer commits: the server pins the changed block to the
 * connection's revision, and we print the pins seen. Through wcfs.h.
 *
 * Runs the embedded WCFS test server (wcfs-testserver, the one the demo
 * runs) as a child and commits through its control channel (stdin).
 * Build and run: see examples/README.md, or examples/run.sh c. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wcfs.h>

#define F 1 /* the bigfile's oid */

static void die(const char *what, wcfs_result r) {
  char why[512];
  wcfs_last_error(why, sizeof why);
  fprintf(stderr, "pins: %s: %s: %s\n", what, wcfs_result_name(r), why);
  exit(1);
}
#define TRY(call) do { wcfs_result r_ = (call); if (r_ != WCFS_OK) die(#call, r_); } while (0)

/* ---- the test server, in a process of its own ---- */

static pid_t srv_pid;
static FILE *srv_ctl, *srv_out;
static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;

/* Mounts a new test server at mnt (removed again when it ends). */
static void srv_start(const char *mnt) {
  const char *bin = getenv("WCFS_TESTSERVER");
  if (!bin) bin = "target/release/wcfs-testserver";
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) { perror("pipe"); exit(1); }
  srv_pid = fork();
  if (srv_pid < 0) { perror("fork"); exit(1); }
  if (srv_pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    execl(bin, bin, mnt, "--rmdir", (char *)NULL);
    perror(bin);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  srv_ctl = fdopen(in[1], "w");
  srv_out = fdopen(out[0], "r");
  char line[128];
  if (!fgets(line, sizeof line, srv_out) || strncmp(line, "ready ", 6)) {
    fprintf(stderr, "pins: test server did not start (%s)\n", bin);
    exit(1);
  }
}

/* Commits text to block blk of bigfile F; the new revision. */
static uint64_t srv_commit(uint64_t blk, const char *text) {
  char line[128];
  uint64_t at;
  pthread_mutex_lock(&srv_lock);
  fprintf(srv_ctl, "commit %016x %" PRIu64 " %s\n", F, blk, text);
  fflush(srv_ctl);
  if (!fgets(line, sizeof line, srv_out) || sscanf(line, "ok %" SCNx64, &at) != 1) {
    fprintf(stderr, "pins: commit: %s\n", line);
    exit(1);
  }
  pthread_mutex_unlock(&srv_lock);
  return at;
}

/* Unmounts (EOF on the control channel) and waits for the exit. */
static int srv_quit(void) {
  int status;
  fclose(srv_ctl);
  fclose(srv_out);
  return waitpid(srv_pid, &status, 0) == srv_pid && WIFEXITED(status) && !WEXITSTATUS(status);
}

/* ---- another writer ---- */

struct writer {
  const char *mnt;
  size_t blksize;
  uint64_t at;
  char head[10];
  volatile int done;
};

/* Commits #1, then reads head as any other client would: before that read
 * returns, the server pins our block #1 to our revision. */
static void *writer(void *arg) {
  struct writer *w = arg;
  char path[512];
  w->at = srv_commit(1, "BLUEBERRY");
  snprintf(path, sizeof path, "%s/head/bigfile/%016x", w->mnt, F);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || pread(fd, w->head, 9, (off_t)w->blksize) != 9) { perror(path); exit(1); }
  close(fd);
  __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

int main(void) {
  char mnt[] = "/tmp/wcfs-example-XXXXXX";
  if (!mkdtemp(mnt)) { perror("mkdtemp"); return 1; }
  srv_start(mnt);
  srv_commit(0, "apple");
  uint64_t at1 = srv_commit(1, "banana");
  printf("committed @%016" PRIx64 ": #0 apple, #1 banana\n", at1);

  /* Connect at a revision, open the bigfile, map its blocks #0 and #1. */
  wcfs_wcfs *w;
  wcfs_conn *conn;
  wcfs_file *f;
  wcfs_mapping *m;
  TRY(wcfs_open(mnt, &w));
  TRY(wcfs_connect(w, at1, &conn));
  TRY(wcfs_conn_open(conn, F, &f));
  TRY(wcfs_file_mmap(f, 0, 2, &m));
  size_t bs = wcfs_file_blksize(f);
  const char *mem = wcfs_mapping_addr(m); /* plain memory, as of at1 */
  printf("conn @%016" PRIx64 " sees #0 \"%s\", #1 \"%s\"\n", at1, mem, mem + bs);

  struct writer wr = {.mnt = mnt, .blksize = bs};
  pthread_t t;
  pthread_create(&t, NULL, writer, &wr);
  /* Meanwhile we keep reading: always the bytes as of at1. Under valgrind
   * (WCFS_EXAMPLE_NO_RACE set) we wait for the writer first: valgrind runs
   * one thread at a time and a thread in a page fault keeps that turn, so
   * a fault the server answers only after our pin thread acked a pin could
   * not be answered until the server's pin timeout. */
  if (getenv("WCFS_EXAMPLE_NO_RACE"))
    while (!__atomic_load_n(&wr.done, __ATOMIC_ACQUIRE)) usleep(1000);
  long reads = 0;
  do {
    if (strcmp(mem + bs, "banana")) {
      fprintf(stderr, "pins: the mapping moved off @%016" PRIx64 ": #1 shows \"%.16s\"\n", at1, mem + bs);
      return 1;
    }
    reads++;
  } while (!__atomic_load_n(&wr.done, __ATOMIC_ACQUIRE));
  pthread_join(t, NULL);
  printf("another writer committed @%016" PRIx64 ": #1 BLUEBERRY; head shows \"%s\"\n", wr.at, wr.head);
  printf("conn @%016" PRIx64 " still sees #1 \"%s\" (%ld reads during the commit)\n", at1, mem + bs, reads);

  wcfs_pin pins[8];
  size_t n;
  TRY(wcfs_file_pinned(f, pins, 8, &n));
  for (size_t i = 0; i < n; i++)
    printf("pin seen: #%" PRIu64 " -> @%016" PRIx64 "\n", pins[i].blk, pins[i].rev);
  wcfs_stats st;
  TRY(wcfs_conn_stats(conn, &st));
  printf("%" PRIu64 " pin(s) acked, pin handling median <= %" PRIu64 " ns\n", st.acks,
         wcfs_stats_pin_time_quantile(&st, 0.5));
  int ok = n == 1 && pins[0].blk == 1 && pins[0].rev == at1;

  wcfs_mapping_free(m);
  wcfs_file_free(f);
  wcfs_conn_free(conn);
  wcfs_free(w);
  if (!srv_quit()) { fprintf(stderr, "pins: test server failed\n"); return 1; }
  printf("unmounted %s\n", mnt);
  return ok ? 0 : 1;
}
