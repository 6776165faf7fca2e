/* What the C test programs of the C ABI share: OK(call) and CHECK(cond, ...)
 * print FAIL and the reason and exit(1); open_f1 maps blocks 0..1 of file 1
 * as of a revision and reads them. */
#ifndef WCFS_TESTS_CHECK_H
#define WCFS_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "wcfs.h"

#define OK(call) \
  do { \
    wcfs_result r_ = (call); \
    if (r_ != WCFS_OK) { \
      char e_[1024]; \
      wcfs_last_error(e_, sizeof e_); \
      printf("FAIL %s: %s: %s\n", #call, wcfs_result_name(r_), e_); \
      exit(1); \
    } \
  } while (0)

#define CHECK(cond, ...) \
  do { \
    if (!(cond)) { \
      printf("FAIL %s: ", #cond); \
      printf(__VA_ARGS__); \
      printf("\n"); \
      exit(1); \
    } \
  } while (0)

/* Opens the WCFS at mnt, connects as of at, opens file 1, maps its blocks
 * 0..1 and reads their first two bytes into buf (handles out). */
static inline void open_f1(const char *mnt, uint64_t at, wcfs_wcfs **w, wcfs_conn **c, wcfs_file **f,
                    wcfs_mapping **m, char buf[2]) {
  OK(wcfs_open(mnt, w));
  OK(wcfs_connect(*w, at, c));
  OK(wcfs_conn_open(*c, 1, f));
  OK(wcfs_file_mmap(*f, 0, 2, m));
  OK(wcfs_mapping_read(*m, 0, buf, 2));
}

#endif
