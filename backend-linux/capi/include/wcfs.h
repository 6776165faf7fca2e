/* wcfs.h: the C ABI of wcfs-rs, the client of WCFS (the FUSE filesystem of
 * wendelin.core). Built by `cargo build --release -p wcfs-capi` as
 * target/release/libwcfs.a and target/release/libwcfs.so.
 *
 * Conventions (for every function below)
 * --------------------------------------
 * Handles. `wcfs_wcfs`, `wcfs_conn`, `wcfs_file` and `wcfs_mapping` are
 *   opaque. A function creating one stores it into its last parameter
 *   `out` (set to NULL first, so on failure `*out == NULL`); the caller owns
 *   it and releases it with the matching `_free` exactly once. `_free(NULL)`
 *   does nothing. A handle keeps alive what it belongs to: a mapping keeps
 *   its file and connection, a file its connection, so handles may be
 *   freed in any order. Freeing the last handle of a mapping unmaps it; of
 *   a file, closes it; of a connection (and of all its files and mappings),
 *   closes it.
 * Pointers in. A handle parameter (`const wcfs_conn *c`, ...) must be a live
 *   handle from this library; NULL gives WCFS_ERR_NULL (functions returning
 *   wcfs_result) or the documented default (getters). Strings are
 *   NUL-terminated, read during the call only, never kept. `out`
 *   parameters must point to writable storage; NULL gives WCFS_ERR_NULL.
 *   A buffer `(buf, len)` may be NULL only with `len == 0`.
 * Pointers out. No function returns memory the caller must free, apart
 *   from handles. Strings returned (`wcfs_result_name`) are static.
 *   `wcfs_mapping_addr` points into memory owned by the mapping: valid
 *   until the mapping is unmapped (`wcfs_mapping_unmap`, or the last
 *   `wcfs_mapping_free`); it faults (SIGSEGV/SIGBUS) once the file or
 *   connection is closed or down, and in a fork child.
 * Errors. A function returning wcfs_result returns WCFS_OK or an error
 *   code; on error the full text (`wcfs <mnt>: conn<N> @<at>: ...`) is kept
 *   per thread until the next failing call of that thread and copied out by
 *   wcfs_last_error. Successful calls leave it unchanged.
 * Threads. Every handle may be used from any thread, concurrently, except
 *   that a `_free` must not race with another use of the same handle.
 *   The library runs one thread per connection (the pin thread).
 * Exit. A process may exit (exit(), a return from main) with connections
 *   open: an exit handler says goodbye on each connection still up (its
 *   mappings fault from then on; do not read them in later exit handlers
 *   or destructors), so the server ends the pin thread's pending read of
 *   head/watch at once. _exit() and death by a signal run no exit handler:
 *   such a process waits until the server answers that read, so close
 *   connections (wcfs_conn_close) before ending that way.
 * Panics. No Rust panic crosses into C: it becomes WCFS_ERR_PANIC (or a
 *   getter's default) with the panic's text as the last error.
 * Numbers. Revisions (tids) and oids are uint64_t, as in ZODB; blocks are
 *   numbered from 0 and sized wcfs_file_blksize() bytes.
 */
#ifndef WCFS_H
#define WCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a call did: WCFS_OK, or why it failed (the text: wcfs_last_error). */
typedef enum wcfs_result {
  WCFS_OK = 0,
  /* A pointer the call needs was NULL. */
  WCFS_ERR_NULL = 1,
  /* An argument is malformed (a string not UTF-8, a length that overflows). */
  WCFS_ERR_INVALID_ARG = 2,
  /* The library panicked (a bug); the text says where. */
  WCFS_ERR_PANIC = 3,
  /* No WCFS is mounted for this database (wcfs_join). */
  WCFS_ERR_NOT_MOUNTED = 4,
  /* The mountpoint serves another database (wcfs_join). */
  WCFS_ERR_ZURL_MISMATCH = 5,
  /* The OS refused (opening the mountpoint, reading head/at, ...). */
  WCFS_ERR_IO = 6,
  /* The connection is closed or down. */
  WCFS_ERR_CONN_CLOSED = 7,
  /* The file handle was closed. */
  WCFS_ERR_FILE_CLOSED = 8,
  /* The mapping was unmapped. */
  WCFS_ERR_NO_SUCH_MAPPING = 9,
  /* A block range out of the file's addressable range or the mapping. */
  WCFS_ERR_BAD_RANGE = 10,
  /* resync to an older revision: forbidden, and the connection is down. */
  WCFS_ERR_GOING_BACK = 11,
  /* The watch link broke. */
  WCFS_ERR_LINK = 12,
  /* The server misbehaved or refused (its text in the error). */
  WCFS_ERR_PROTOCOL = 13,
  /* A syscall the connection made failed. */
  WCFS_ERR_OS = 14,
  /* The caller's buffer is too small (the call says how much it needs). */
  WCFS_ERR_BUFFER_TOO_SMALL = 15,
  /* A caller's range (wcfs_file_mmap_at) misaligned, of the wrong length,
   * or overlapping a mapping of the connection; left untouched. */
  WCFS_ERR_BAD_ADDRESS = 16,
  /* The zurl has no normal form, so names no mountpoint (wcfs_join). */
  WCFS_ERR_BAD_ZURL = 17,
  /* What is mounted there is not a WCFS serving this database, or is
   * mounted by a user that is neither root nor the caller (wcfs_join). */
  WCFS_ERR_UNTRUSTED = 18,
  /* Starting a server failed: none known ($WCFS_SERVER), it could not be
   * spawned, it exited, or it did not answer in time (wcfs_join). */
  WCFS_ERR_SERVER_START = 19,
  /* A bug of the library (a broken internal contract); the text says which. */
  WCFS_ERR_BUG = 20,
  /* The server did not answer, or end the link, before the deadline. */
  WCFS_ERR_TIMEOUT = 21,
} wcfs_result;

/* A mounted WCFS server. */
typedef struct wcfs_wcfs wcfs_wcfs;
/* A connection: a view of the database as of one revision. */
typedef struct wcfs_conn wcfs_conn;
/* An open bigfile of a connection. */
typedef struct wcfs_file wcfs_file;
/* A memory mapping of blocks of a file, bytes as of the connection's revision. */
typedef struct wcfs_mapping wcfs_mapping;

/* A pin in force: block `blk` shows revision `rev`. */
typedef struct wcfs_pin {
  uint64_t blk;
  uint64_t rev;
} wcfs_pin;

/* Buckets of the pin handling time histogram of wcfs_stats:
 * log-linear, one per ns below 16 ns, then 16 per power of two (each at
 * most 1/16 of its start wide), the last one also counting everything
 * longer (from about 66 s). wcfs_stats_pin_time_bucket_end names their ends. */
#define WCFS_PIN_TIME_BUCKETS 528

/* A snapshot of a connection's statistics: counters since the connection
 * was made (each exact, read one by one: they may be a few events apart)
 * and the pin handling time histogram. */
typedef struct wcfs_stats {
  /* Pins to a revision applied. */
  uint64_t pins;
  /* Pins back to head applied. */
  uint64_t unpins;
  /* ack lines sent. */
  uint64_t acks;
  /* nak lines sent. */
  uint64_t naks;
  /* @rev files opened. */
  uint64_t rev_opens;
  /* Pins whose @rev file was already open. */
  uint64_t rev_hits;
  /* Blocks remapped one by one (pins, remap_blk, pinned blocks of new
   * mappings and resyncs). */
  uint64_t remaps;
  /* Resyncs completed. */
  uint64_t resyncs;
  /* Pins that found the VM's page dirty and left it (wcfs_file_mmap_vm). */
  uint64_t dirty_kept;
  /* Pins handled in bucket i's range of ns (see WCFS_PIN_TIME_BUCKETS),
   * from reading the pin's line to writing its ack. */
  uint64_t pin_time_ns[WCFS_PIN_TIME_BUCKETS];
} wcfs_stats;

/* ---- errors ---- */

/* The name of a result code ("WCFS_ERR_GOING_BACK"); "WCFS_UNKNOWN" for a
 * value that is no code. Static: never freed. */
const char *wcfs_result_name(int result);

/* Copies the text of this thread's last error into buf (NUL-terminated, cut
 * to len - 1 bytes at a character boundary) and returns its full length
 * without the NUL, like snprintf: call with (NULL, 0) to learn the size.
 * "" (0) if no call of this thread failed yet. */
size_t wcfs_last_error(char *buf, size_t len);

/* ---- wcfs: a mounted server ---- */

/* Opens the WCFS mounted at `mountpoint` (a path, any bytes).
 * A wcfs_wcfs holds no descriptor inside the mount of its own: its live
 * connections share one, let go of when the last of them is closed (or
 * goes down). Once every connection is closed, its files and mappings with
 * it, the process keeps the mount busy no more (even before the handles
 * are freed): a plain `fusermount3 -u` succeeds. */
wcfs_result wcfs_open(const char *mountpoint, wcfs_wcfs **out);

/* The server of database `zurl` (UTF-8) where wendelin.core mounts it:
 * /dev/shm/wcfs/<sha1 hex of the normalized zurl> (wcfs_mountpoint_for),
 * accepted if its mount is of type fuse.wcfs, owned by root or the caller,
 * and serves that database. When nothing is mounted there, a server is
 * started as $WENDELIN_CORE_WCFS_AUTOSTART says (yes, the default, or no):
 * `$WCFS_SERVER [$WENDELIN_CORE_WCFS_OPTIONS] -autoexit <zurl> <mountpoint>`.
 * The same server for the same database within a process.
 * WCFS_ERR_BAD_ZURL (no normal form: unknown scheme), WCFS_ERR_NOT_MOUNTED
 * (nothing mounted, autostart off), WCFS_ERR_ZURL_MISMATCH,
 * WCFS_ERR_UNTRUSTED, WCFS_ERR_SERVER_START (no executable known, it
 * exited, or it did not answer in time), WCFS_ERR_INVALID_ARG (a bad
 * $WENDELIN_CORE_WCFS_AUTOSTART). */
wcfs_result wcfs_join(const char *zurl, wcfs_wcfs **out);

/* Values of wcfs_join_options.autostart. */
#define WCFS_AUTOSTART_FROM_ENV 0
#define WCFS_AUTOSTART_YES 1
#define WCFS_AUTOSTART_NO 2

/* How wcfs_join_with finds or starts the server. Zero-initialized
 * (`wcfs_join_options o = {0};`) it means what wcfs_join does. Strings are
 * NUL-terminated and read during the call only. */
typedef struct wcfs_join_options {
  /* WCFS_AUTOSTART_FROM_ENV (0), WCFS_AUTOSTART_YES or WCFS_AUTOSTART_NO. */
  int autostart;
  /* The wcfs executable to autostart; NULL: $WCFS_SERVER. */
  const char *server;
  /* n_options options for an autostarted server, after those of
   * $WENDELIN_CORE_WCFS_OPTIONS (UTF-8); NULL with n_options == 0. */
  const char *const *options;
  size_t n_options;
  /* The directory of mountpoints (path, any bytes); NULL: /dev/shm/wcfs. */
  const char *base;
  /* How long an autostarted server has to answer, in ms; 0: 30 s. */
  uint32_t start_timeout_ms;
} wcfs_join_options;

/* wcfs_join as `opts` say; NULL opts: as wcfs_join. An autostart value
 * that is none of WCFS_AUTOSTART_* gives WCFS_ERR_INVALID_ARG. */
wcfs_result wcfs_join_with(const char *zurl, const wcfs_join_options *opts, wcfs_wcfs **out);

/* wcfs_join with another directory of mountpoints than /dev/shm/wcfs and
 * no autostart (as wcfs_join_with with base and WCFS_AUTOSTART_NO). */
wcfs_result wcfs_join_under(const char *base, const char *zurl, wcfs_wcfs **out);

/* Copies the mountpoint wcfs_join uses for `zurl`,
 * "/dev/shm/wcfs/<40 hex digits>", NUL-terminated into buf. Nothing is
 * looked up or created. WCFS_ERR_BAD_ZURL, WCFS_ERR_BUFFER_TOO_SMALL (len
 * below 55; buf untouched). */
wcfs_result wcfs_mountpoint_for(const char *zurl, char *buf, size_t len);

/* Releases a handle from wcfs_open/wcfs_join. */
void wcfs_free(wcfs_wcfs *w);

/* Copies the mountpoint into buf as wcfs_last_error does; returns its full
 * length (0 for NULL w). */
size_t wcfs_mountpoint(const wcfs_wcfs *w, char *buf, size_t len);

/* Reads head/at, the newest revision the server shows, into *at. */
wcfs_result wcfs_head_at(const wcfs_wcfs *w, uint64_t *at);

/* A connection viewing the database as of `at`; waits until head/at >= at. */
wcfs_result wcfs_connect(const wcfs_wcfs *w, uint64_t at, wcfs_conn **out);

/* wcfs_connect with limits: `rev_cache` @rev files kept open (clamped to
 * 1..16; default 8), at most `max_pins_per_file` pins in force per file
 * (more brings the connection down; default 4M); 0 keeps a default. */
wcfs_result wcfs_connect_with(const wcfs_wcfs *w, uint64_t at, size_t rev_cache,
                              size_t max_pins_per_file, wcfs_conn **out);

/* ---- conn ---- */

/* The revision the connection views (0 for NULL). */
uint64_t wcfs_conn_at(const wcfs_conn *c);

/* The connection's number in its server (the N of "conn<N>"; 0 for NULL). */
uint64_t wcfs_conn_id(const wcfs_conn *c);

/* Opens bigfile `oid` (the same file again gives another handle on it). */
wcfs_result wcfs_conn_open(const wcfs_conn *c, uint64_t oid, wcfs_file **out);

/* Moves the view forward to `at`: every mapping shows the data as of `at`
 * on return. Going back fails with WCFS_ERR_GOING_BACK and brings the
 * connection down. */
wcfs_result wcfs_conn_resync(const wcfs_conn *c, uint64_t at);

/* Closes the connection: every mapping of it faults from now on; its
 * handles stay to be freed. Closing twice is WCFS_OK. */
wcfs_result wcfs_conn_close(const wcfs_conn *c);

/* Copies why the connection is down into buf as wcfs_last_error does;
 * returns the text's full length, 0 while the connection is up (or c is
 * NULL). */
size_t wcfs_conn_down_reason(const wcfs_conn *c, char *buf, size_t len);

/* Copies the connection's statistics now into *out. Reads atomics: never
 * waits for, nor stops, the pin thread. */
wcfs_result wcfs_conn_stats(const wcfs_conn *c, wcfs_stats *out);

/* An upper bound (ns) of the q-quantile (q in [0, 1], e.g. 0.5, 0.99) of
 * the pin handling time in *s: the end of the bucket holding it. 0 when no
 * time was recorded, or s is NULL. */
uint64_t wcfs_stats_pin_time_quantile(const wcfs_stats *s, double q);

/* The end (ns, exclusive) of bucket i of pin_time_ns: the first time of
 * bucket i + 1 (bucket 0 starts at 0); UINT64_MAX for the last bucket and
 * past it. */
uint64_t wcfs_stats_pin_time_bucket_end(size_t i);

/* Releases a handle from wcfs_connect. */
void wcfs_conn_free(wcfs_conn *c);

/* ---- file ---- */

/* The file's oid (0 for NULL). */
uint64_t wcfs_file_oid(const wcfs_file *f);

/* The file's block size in bytes (0 for NULL). */
uint64_t wcfs_file_blksize(const wcfs_file *f);

/* Maps blocks [blk_start, blk_start + blk_len) at an address the OS
 * chooses; blocks past the file's end read as zeros. */
wcfs_result wcfs_file_mmap(const wcfs_file *f, uint64_t blk_start, uint64_t blk_len,
                           wcfs_mapping **out);

/* Maps blocks [blk_start, blk_start + blk_len) over the caller's range
 * [addr, addr + len) (MAP_FIXED), e.g. one reserved with
 * mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), and from
 * then on manages it like wcfs_file_mmap's mappings (pins, zeros past the
 * end, faulting after close). wcfs_mapping_addr(*out) == addr.
 * Contract: the caller owns the range (memory it mapped itself that nothing
 * else uses); `addr` is page-aligned and len == blk_len * blksize, else
 * WCFS_ERR_BAD_ADDRESS with the range untouched (so also when it overlaps a
 * mapping of this connection); while the mapping lives the caller neither
 * unmaps nor remaps the range, except private pages over blocks it marked
 * dirty (wcfs_mapping_mark_dirty).
 * The range stays the caller's: when the mapping is unmapped (or its last
 * handle freed), and when this call fails after touching it, the range is
 * left reserved and inaccessible (an anonymous PROT_NONE mapping; should
 * the OS refuse that, the same file mapping mprotect-ed to PROT_NONE, and
 * should it refuse that too, wcfs_mapping_unmap fails), never given back to
 * the OS: map into it again, or munmap it. */
wcfs_result wcfs_file_mmap_at(const wcfs_file *f, uint64_t blk_start, uint64_t blk_len,
                              void *addr, size_t len, wcfs_mapping **out);

/* The callbacks of a user-space virtual-memory manager (a "VM", such as
 * wendelin.core's virtmem) that a mapping serves as base layer
 * (wcfs_file_mmap_vm). Each gets the `vm` pointer given with them.
 *   lock:     takes the VM's lock, waiting for it; 0 once held, else an
 *             error code (the pin asking fails).
 *   unlock:   releases the lock this thread took with lock; must not wait.
 *   is_dirty: called with the VM's lock held (by this thread) and the
 *             connection's: 1 if the VM laid a dirty page over block `blk`,
 *             whose page(s) start at `page`, 0 if not, < 0 on error (the pin
 *             asking fails). Must not wait nor call into this library.
 * They are called from the pin thread (and from a thread in
 * wcfs_conn_resync), concurrently with the VM's own threads. */
typedef struct wcfs_vm_ops {
  int (*lock)(void *vm);
  void (*unlock)(void *vm);
  int (*is_dirty)(void *vm, const void *page, uint64_t blk);
} wcfs_vm_ops;

/* Maps blocks [blk_start, blk_start + blk_len) over the caller's range
 * [addr, addr + len) as wcfs_file_mmap_at does (same contract, same range
 * rules), as the base layer of the area of VM `vm` that lies there: the
 * pull contract of wendelin.core's FileH::mmap(blk, len, VMA*). The VM lays
 * private pages over blocks it writes (MAP_FIXED) and tells nobody; when a
 * pin comes for a block, the pin thread
 *   1. calls ops->lock(vm), holding no lock of the client;
 *   2. takes the connection's lock and, for each mapping of this VM over
 *      the block, calls ops->is_dirty: a dirty page is left alone (the pin
 *      is recorded, so wcfs_mapping_remap_blk later maps its revision), a
 *      clean block is remapped;
 *   3. acks the pin, then calls ops->unlock(vm).
 * Lock order: the VM's lock, then the connection's, then the file's. VMs
 * are told apart by `vm`: mappings that share a lock pass the same `vm`
 * (and the same ops); several VMs over one block are locked in ascending
 * order of `vm`.
 * Under its lock the VM may call wcfs_mapping_remap_blk (after dropping a
 * page: the block shows the data as of the connection's `at` again),
 * wcfs_mapping_unmap / wcfs_mapping_free (its area goes away),
 * wcfs_mapping_mark_dirty and wcfs_file_mmap_vm: they take only the
 * connection's lock, so they never deadlock with a pin waiting for the VM.
 * It must not, under its lock: touch the mapping's memory where it has no
 * page of its own (a read of head may wait for the server, which waits for
 * the ack of a pin that waits for the VM's lock: copy a base page into a
 * buffer before taking the lock; its bytes are the data as of `at` whenever
 * read), nor call wcfs_conn_resync, wcfs_conn_open, wcfs_file_close or
 * wcfs_conn_close (they wait for the server's replies, which come after
 * pins that need the lock).
 * Dirtiness is per block: a VM whose pages are smaller than blocks copies
 * and reports the whole block when it writes into any page of it.
 * A pin holds the VM's lock for one is_dirty per mapping of the VM over
 * the block and one mmap per clean one (microseconds; see BENCHMARKS.md).
 * A resync that changes head's size asks the same way, on its thread, per
 * block of the changed tail. A callback error nak's the pin and takes the
 * connection down (its mappings fault); no crash. WCFS_ERR_NULL for a NULL
 * ops or callback. */
wcfs_result wcfs_file_mmap_vm(const wcfs_file *f, uint64_t blk_start, uint64_t blk_len,
                              void *addr, size_t len, const wcfs_vm_ops *ops, void *vm,
                              wcfs_mapping **out);

/* Copies the pins in force (block -> revision, sorted by block) into
 * pins[0..cap) and their count into *n; WCFS_ERR_BUFFER_TOO_SMALL (with *n
 * set) when cap < *n. */
wcfs_result wcfs_file_pinned(const wcfs_file *f, wcfs_pin *pins, size_t cap, size_t *n);

/* Closes the file for every handle of it: its mappings fault from now on.
 * Closing twice is WCFS_OK. */
wcfs_result wcfs_file_close(const wcfs_file *f);

/* Releases a handle from wcfs_conn_open. */
void wcfs_file_free(wcfs_file *f);

/* ---- mapping ---- */

/* The first mapped byte (NULL for NULL). Read-only memory. */
void *wcfs_mapping_addr(const wcfs_mapping *m);

/* The mapping's length in bytes: blk_len * blksize (0 for NULL). */
size_t wcfs_mapping_len(const wcfs_mapping *m);

/* The first block mapped (0 for NULL). */
uint64_t wcfs_mapping_blk_start(const wcfs_mapping *m);

/* One past the last block mapped (0 for NULL). */
uint64_t wcfs_mapping_blk_stop(const wcfs_mapping *m);

/* Whether the mapping's memory faults now: file or connection closed or
 * down, unmapped, or a fork child (true for NULL). */
bool wcfs_mapping_is_faulting(const wcfs_mapping *m);

/* Whether the mapping's view ended but the OS refused both to make its
 * memory fault (MAP_FIXED) and to mprotect it: the memory may still show
 * the bytes it showed then, and raw accesses must not count on a fault.
 * Only after two refused syscalls, each taking the connection down
 * (false for NULL). */
bool wcfs_mapping_is_exposed(const wcfs_mapping *m);

/* Copies len bytes at `offset` of the mapping into buf; fails
 * (WCFS_ERR_FILE_CLOSED) instead of faulting when the mapping is known to
 * fault, WCFS_ERR_BAD_RANGE past its end. A close racing with the copy
 * still faults, as with any read of wcfs_mapping_addr. */
wcfs_result wcfs_mapping_read(const wcfs_mapping *m, size_t offset, void *buf, size_t len);

/* For a VM layer: a private page is about to be laid over block `blk`;
 * pins leave the block alone until wcfs_mapping_remap_blk. Call it before
 * laying the page, so that no pin can replace it. */
wcfs_result wcfs_mapping_mark_dirty(const wcfs_mapping *m, uint64_t blk);

/* The private page over `blk` is gone: maps the block again per the pins in
 * force, so it shows the data as of the connection's revision. */
wcfs_result wcfs_mapping_remap_blk(const wcfs_mapping *m, uint64_t blk);

/* Releases the mapping's memory now, for every handle of it; no thread may
 * use that memory any more. A range of wcfs_file_mmap_at is not released
 * but left reserved, inaccessible, to its owner. Unmapping twice is
 * WCFS_OK. Fails (WCFS_ERR_OS) when the OS refused what this asked
 * of it, and the connection goes down for it; a range of wcfs_file_mmap_at
 * may then still show its old bytes: map over it before relying on a
 * fault. */
wcfs_result wcfs_mapping_unmap(const wcfs_mapping *m);

/* Releases a handle from wcfs_file_mmap or wcfs_file_mmap_at; the last
 * one unmaps (as wcfs_mapping_unmap). */
void wcfs_mapping_free(wcfs_mapping *m);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* WCFS_H */
