/* A small virtual-memory manager on real memory over wcfs_file_mmap_vm;
 * run by tests/tests/capi.rs while another process commits to the file and
 * reads its head all along (so pins arrive while this program writes).
 *
 *   vm_on_real_memory <mountpoint> <oid> <nblk> ok <rounds>
 *   vm_on_real_memory <mountpoint> <oid> <nblk> fail
 *
 * The VM reserves an area of nblk blocks, has the client map the file
 * there as its base layer, and keeps its own table of dirty blocks under
 * its own lock. A write to a clean block faults (the base is read-only):
 * the SIGSEGV handler copies the base block (before taking the lock: a
 * read of head may wait for a pin, which waits for the lock), then, under
 * the lock, lays a private copy over the block (MAP_FIXED) and marks it in
 * its table only. Now and then the VM discards a dirty block under its
 * lock (table, then wcfs_mapping_remap_blk). Each round ends by discarding
 * every dirty block and resyncing to head.
 *
 * Checked all along: every byte written stays; every other byte is the
 * file as of the connection's `at` (read from @<at>/bigfile/<oid>); a
 * discarded block shows `at`'s data again; the client never asks is_dirty
 * without the lock. "fail": is_dirty fails; the first pin fails cleanly
 * (the connection goes down, the mapping faults, the lock is free), no
 * crash. Prints PASS at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* The VM: its lock, its area, its table of dirty blocks. */
static struct {
  pthread_mutex_t mu;
  pthread_t holder;
  int held;
  uint8_t *area;
  size_t bs, nblk;
  uint8_t *dirty;      /* per block: the VM laid a private page there */
  int fail;            /* is_dirty fails (the "fail" run) */
  unsigned long asked; /* is_dirty calls */
  unsigned long bad;   /* is_dirty calls without the lock */
} vm;

static int vm_lock(void *p) {
  (void)p;
  pthread_mutex_lock(&vm.mu);
  vm.holder = pthread_self();
  vm.held = 1;
  return 0;
}

static void vm_unlock(void *p) {
  (void)p;
  vm.held = 0;
  pthread_mutex_unlock(&vm.mu);
}

static int vm_is_dirty(void *p, const void *page, uint64_t blk) {
  (void)p;
  vm.asked++;
  if (!vm.held || !pthread_equal(vm.holder, pthread_self())) vm.bad++;
  if ((const uint8_t *)page != vm.area + blk * vm.bs) vm.bad++;
  if (vm.fail) return -EIO;
  return blk < vm.nblk && vm.dirty[blk];
}

static const wcfs_vm_ops ops = {vm_lock, vm_unlock, vm_is_dirty};

/* The write-fault handler: a private copy of the base block. */
static uint8_t *copybuf;

static void on_segv(int sig, siginfo_t *si, void *ctx) {
  (void)ctx;
  uint8_t *a = si->si_addr;
  if (a < vm.area || a >= vm.area + vm.nblk * vm.bs) {
    signal(sig, SIG_DFL); /* not ours: crash for real */
    return;
  }
  size_t blk = (size_t)(a - vm.area) / vm.bs;
  uint8_t *b = vm.area + blk * vm.bs;
  if (vm.dirty[blk]) {
    signal(sig, SIG_DFL);
    return;
  }
  memcpy(copybuf, b, vm.bs); /* without the lock: may wait for the server */
  vm_lock(NULL);
  void *p = mmap(b, vm.bs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0);
  if (p != b) {
    signal(sig, SIG_DFL);
    vm_unlock(NULL);
    return;
  }
  memcpy(b, copybuf, vm.bs);
  vm.dirty[blk] = 1; /* in its own table only */
  vm_unlock(NULL);
}

/* The file as of `at`, zeros past its end. */
static void read_at(const char *mnt, uint64_t oid, uint64_t at, uint8_t *out, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/@%016" PRIx64 "/bigfile/%016" PRIx64, mnt, at, oid);
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
  memset(out, 0, len);
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, out + got, len - got, (off_t)got);
    CHECK(n >= 0, "read %s: %s", path, strerror(errno));
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t rnd(uint64_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng % n;
}

/* Drops dirty block `blk`: the table first, then the client remaps it. */
static void discard(const wcfs_mapping *m, size_t blk) {
  vm_lock(NULL);
  vm.dirty[blk] = 0;
  OK(wcfs_mapping_remap_blk(m, blk));
  vm_unlock(NULL);
}

static void first_difference(const uint8_t *got, const uint8_t *want, size_t len,
                             const char *what) {
  for (size_t i = 0; i < len; i++)
    CHECK(got[i] == want[i], "%s: byte %zu (block %zu): %02x, want %02x", what, i, i / vm.bs,
          got[i], want[i]);
}

static int run_fail(const wcfs_conn *c, const wcfs_mapping *m) {
  vm.fail = 1;
  printf("ready %016" PRIx64 "\n", wcfs_conn_at(c));
  fflush(stdout);
  for (int i = 0; i < 4000 && !wcfs_mapping_is_faulting(m); i++) usleep(5000);
  CHECK(wcfs_mapping_is_faulting(m), "no pin failed in 20 s");
  char why[1024];
  wcfs_conn_down_reason(c, why, sizeof why);
  CHECK(strstr(why, "VmDirty") != NULL, "down for: %s", why);
  CHECK(pthread_mutex_trylock(&vm.mu) == 0, "the VM's lock was left held");
  pthread_mutex_unlock(&vm.mu);
  wcfs_file *f2 = NULL;
  CHECK(wcfs_conn_open(c, 1, &f2) == WCFS_ERR_CONN_CLOSED, "open after down");
  printf("down: %s\n", why);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s <mountpoint> <oid> <nblk> ok <rounds> | fail\n", argv[0]);
    return 2;
  }
  const char *mnt = argv[1];
  uint64_t oid = strtoull(argv[2], NULL, 16);
  vm.nblk = strtoull(argv[3], NULL, 10);
  int fail = strcmp(argv[4], "fail") == 0;
  int rounds = argc > 5 ? atoi(argv[5]) : 1;

  wcfs_wcfs *w = NULL;
  wcfs_conn *c = NULL;
  wcfs_file *f = NULL;
  wcfs_mapping *m = NULL;
  uint64_t at;
  OK(wcfs_open(mnt, &w));
  OK(wcfs_head_at(w, &at));
  OK(wcfs_connect(w, at, &c));
  OK(wcfs_conn_open(c, oid, &f));
  vm.bs = wcfs_file_blksize(f);
  size_t len = vm.nblk * vm.bs;
  pthread_mutex_init(&vm.mu, NULL);
  vm.dirty = calloc(vm.nblk, 1);
  copybuf = malloc(vm.bs);
  uint8_t *atdata = malloc(len), *expect = malloc(len);
  CHECK(vm.dirty && copybuf && atdata && expect, "out of memory");

  /* Reserve the area, map the base there, protect it read-only. */
  vm.area = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(vm.area != MAP_FAILED, "reserve: %s", strerror(errno));
  OK(wcfs_file_mmap_vm(f, 0, vm.nblk, vm.area, len, &ops, NULL, &m));
  CHECK(wcfs_mapping_addr(m) == vm.area, "mapped elsewhere");
  CHECK(mprotect(vm.area, len, PROT_READ) == 0, "mprotect: %s", strerror(errno));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);

  if (fail) {
    int r = run_fail(c, m);
    printf("PASS\n");
    return r;
  }

  printf("ready %016" PRIx64 "\n", at);
  fflush(stdout);
  unsigned long writes = 0, discards = 0, faults = 0;
  for (int round = 0; round < rounds; round++) {
    read_at(mnt, oid, at, atdata, len);
    memcpy(expect, atdata, len);
    first_difference(vm.area, atdata, len, "at the round's start");
    for (int i = 0; i < 600; i++) {
      size_t blk = rnd(vm.nblk), off = blk * vm.bs + rnd(vm.bs);
      uint8_t v = (uint8_t)(1 + rnd(255));
      faults += !vm.dirty[blk];
      vm.area[off] = v; /* faults into a private copy the first time */
      expect[off] = v;
      writes++;
      if (rnd(40) == 0) {
        size_t d = rnd(vm.nblk);
        if (vm.dirty[d]) {
          discard(m, d);
          discards++;
          memcpy(expect + d * vm.bs, atdata + d * vm.bs, vm.bs);
          first_difference(vm.area + d * vm.bs, atdata + d * vm.bs, vm.bs,
                           "a discarded block");
        }
      }
      if (i % 100 == 99) first_difference(vm.area, expect, len, "while writing");
      if (i % 50 == 0) usleep(1000); /* let commits and pins come */
    }
    first_difference(vm.area, expect, len, "at the round's end");
    for (size_t b = 0; b < vm.nblk; b++)
      if (vm.dirty[b]) discard(m, b);
    first_difference(vm.area, atdata, len, "after discarding all");
    /* The transaction is over: move the view to head. */
    uint64_t head;
    OK(wcfs_head_at(w, &head));
    OK(wcfs_conn_resync(c, head));
    at = head;
    printf("round %d at %016" PRIx64 "\n", round, at);
  }
  read_at(mnt, oid, at, atdata, len);
  first_difference(vm.area, atdata, len, "after the last resync");
  wcfs_stats st;
  OK(wcfs_conn_stats(c, &st));
  CHECK(vm.bad == 0, "%lu is_dirty calls without the lock or at a wrong page", vm.bad);
  printf("stats writes %lu faults %lu discards %lu asked %lu pins %" PRIu64 " dirty_kept %" PRIu64
         " remaps %" PRIu64 "\n",
         writes, faults, discards, vm.asked, st.pins, st.dirty_kept, st.remaps);
  CHECK(st.naks == 0, "naks sent");
  wcfs_mapping_free(m);
  wcfs_file_free(f);
  wcfs_conn_free(c);
  wcfs_free(w);
  printf("PASS\n");
  return 0;
}
