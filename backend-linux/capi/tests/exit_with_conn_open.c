/* Exits with a connection open; run by tests/tests/capi.rs.
 *
 *   exit_with_conn_open <mountpoint> <at>
 *
 * Connects as of <at> (hex), maps blocks 0..1 of file 1 (block 0 pinned:
 * head is past <at>), reads them, prints "ready", and calls exit(3)
 * without closing anything. The library's exit handler says bye, so the
 * process ends at once instead of waiting for the server to answer the pin
 * thread's read of head/watch. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <mountpoint> <at>\n", argv[0]);
    return 2;
  }
  uint64_t at = strtoull(argv[2], NULL, 16);
  wcfs_wcfs *w = NULL;
  wcfs_conn *c = NULL;
  wcfs_file *f = NULL;
  wcfs_mapping *m = NULL;
  char buf[2];
  open_f1(argv[1], at, &w, &c, &f, &m, buf);
  wcfs_pin pins[4];
  size_t n = 0;
  OK(wcfs_file_pinned(f, pins, 4, &n));
  if (n != 1 || pins[0].blk != 0 || pins[0].rev != at) {
    printf("FAIL pins: %zu\n", n);
    return 1;
  }
  printf("ready %c%c\n", buf[0], buf[1]);
  fflush(stdout);
  exit(3);
}
