/* Closes everything, then unmounts; run by tests/tests/capi.rs.
 *
 *   let_go <mountpoint> <at>
 *
 * Connects as of <at> (hex), maps blocks 0..1 of file 1 and reads them,
 * then closes the mapping's file and the connection (freeing no handle),
 * and unmounts the filesystem without MNT_DETACH: that succeeds only if
 * the process holds nothing inside the mount. Prints "unmounted", then
 * frees the handles; exits 0. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

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
  if (umount2(argv[1], 0) == 0 || errno != EBUSY) {
    printf("FAIL umount2 while in use: %s\n", strerror(errno));
    return 1;
  }
  OK(wcfs_file_close(f));
  OK(wcfs_conn_close(c));
  if (umount2(argv[1], 0) != 0) {
    printf("FAIL umount2: %s\n", strerror(errno));
    return 1;
  }
  printf("unmounted %c%c\n", buf[0], buf[1]);
  wcfs_mapping_free(m);
  wcfs_file_free(f);
  wcfs_conn_free(c);
  wcfs_free(w);
  return 0;
}
