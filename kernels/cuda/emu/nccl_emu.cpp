/* nccl_emu.cpp — NCCL over POSIX shared memory on emulated device memory
 * (nccl_emu.h): the segment layout, its barrier, the rendezvous, the
 * collectives. */
#include "kernels/cuda/emu/nccl_emu.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace emu {
namespace {

constexpr uint32_t MAGIC = 0x4e43434cu; /* set last by the segment's creator */
constexpr int MAX_RANKS = 64;
#ifndef NCCL_EMU_CHUNK
#define NCCL_EMU_CHUNK (256 << 10)
#endif
constexpr size_t CHUNK = NCCL_EMU_CHUNK; /* bytes of each rank's staging area */
constexpr char PREFIX[] = "/ctrain-nccl-";

struct slot {
  std::atomic<int> arrived; /* set after the rest */
  int ppid, call;           /* call: which ncclCommInitRank of its process */
};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "atomics in shared memory work across processes only when lock-free");

struct header {
  std::atomic<uint32_t> magic;
  int nranks;
  char id[NCCL_UNIQUE_ID_BYTES];
  std::atomic<int> attached;
  std::atomic<int> failed; /* the ncclResult_t that stopped the comm; -1 while `why` is written */
  char why[256];
  std::atomic<uint32_t> count, generation; /* the barrier */
  slot slots[MAX_RANKS];
};

constexpr size_t HEAD = (sizeof(header) + 63) / 64 * 64; /* the staging areas follow */

double now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

/* Seconds any wait may take: CTRAIN_NCCL_EMU_TIMEOUT, 300 by default. */
double timeout_s() {
  const char *s = std::getenv("CTRAIN_NCCL_EMU_TIMEOUT");
  double t = s ? std::strtod(s, nullptr) : 0;
  return t > 0 ? t : 300;
}

void pause_briefly(long iter) {
  if (iter >= 100) std::this_thread::sleep_for(std::chrono::microseconds(iter < 2000 ? 1 : 100));
}

} // namespace

struct nccl_comm {
  int rank, nranks;
  char name[NCCL_UNIQUE_ID_BYTES];
  header *h;
  char *data; /* nranks staging areas of CHUNK bytes */
  size_t bytes;
  char last_error[512];
  double timeout;           /* seconds a wait may take */
  const char *timeout_from; /* the setting it comes from, for the message */
};

namespace {

__attribute__((format(printf, 3, 4))) ncclResult_t comm_fail(ncclComm_t comm, ncclResult_t rc,
                                                             const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(comm->last_error, sizeof comm->last_error, fmt, ap);
  va_end(ap);
  return rc;
}

/* Stops the comm on every rank: the first failure is the one reported. */
ncclResult_t comm_stop(header *h, int rank, ncclResult_t rc, const char *what) {
  int none = 0;
  if (h->failed.compare_exchange_strong(none, -1)) {
    if (std::snprintf(h->why, sizeof h->why, "rank %d: %s", rank, what) < 0) /* cut if long */
      h->why[0] = '\0';
    h->failed.store(rc, std::memory_order_release);
  }
  return rc;
}

/* Polls done() until it holds, another rank stops the comm, or the timeout
 * passes (then it stops the comm with `late`). */
template <class F>
ncclResult_t wait(ncclComm_t c, const char *what, F done, ncclResult_t late = ncclRemoteError) {
  double start = now(), limit = c->timeout;
  for (long iter = 0;; iter++) {
    if (done()) return ncclSuccess;
    if (int rc = c->h->failed.load(std::memory_order_acquire); rc > 0)
      return comm_fail(c, static_cast<ncclResult_t>(rc), "%s stopped: %s", what, c->h->why);
    pause_briefly(iter);
    if (iter % 256) continue;
    if (now() - start > limit) {
      char why[256]; /* comm_stop names the rank itself */
      std::snprintf(why, sizeof why, "%s waited %.0f s for the other ranks (%s)", what, limit,
                    c->timeout_from);
      comm_fail(c, late, "rank %d: %s", c->rank, why);
      return comm_stop(c->h, c->rank, late, why);
    }
  }
}

/* Sense by generation: the last rank to arrive opens the next one. */
ncclResult_t barrier(ncclComm_t c, const char *what) {
  header *h = c->h;
  uint32_t gen = h->generation.load(std::memory_order_acquire);
  if (h->count.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<uint32_t>(c->nranks)) {
    h->count.store(0, std::memory_order_relaxed);
    h->generation.fetch_add(1, std::memory_order_acq_rel);
    return ncclSuccess;
  }
  return wait(c, what, [&] { return h->generation.load(std::memory_order_acquire) != gen; });
}

/* Another comm's segment where a sibling (a process of the same parent, so
 * the same launch, at the same ncclCommInitRank call) waits as a rank this
 * comm lacks, and this rank's place is free: the ranks were given different
 * ids. Both comms are stopped. */
bool sibling_disagrees(ncclComm_t c) {
  DIR *dir = opendir("/dev/shm");
  if (!dir) return false;
  bool found = false;
  int ppid = getppid();
  while (dirent *ent = readdir(dir)) {
    if (std::strncmp(ent->d_name, PREFIX + 1, sizeof PREFIX - 2) ||
        !std::strcmp(ent->d_name, c->name + 1))
      continue;
    char name[sizeof ent->d_name + 1] = "/";
    std::memcpy(name + 1, ent->d_name, sizeof ent->d_name);
    int fd = shm_open(name, O_RDWR, 0);
    struct stat st;
    if (fd < 0) continue;
    void *p = fstat(fd, &st) == 0 && st.st_size >= static_cast<off_t>(sizeof(header))
                  ? mmap(nullptr, sizeof(header), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                  : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) continue;
    header *o = static_cast<header *>(p);
    if (o->magic.load(std::memory_order_acquire) == MAGIC && o->nranks == c->nranks &&
        !o->slots[c->rank].arrived.load())
      for (int r = 0; r < c->nranks && !found; r++)
        found = o->slots[r].arrived.load(std::memory_order_acquire) && o->slots[r].ppid == ppid &&
                o->slots[r].call == c->h->slots[c->rank].call && !c->h->slots[r].arrived.load();
    if (found)
      comm_stop(o, c->rank, ncclInvalidUsage, "ranks of one launch hold different unique ids");
    munmap(p, sizeof(header));
    if (found) break;
  }
  closedir(dir);
  return found;
}

/* Creates c->name or opens it, sizes it (every rank: a larger size for
 * more ranks stays, and is caught) and maps it; its creator sets it up. */
ncclResult_t open_segment(ncclComm_t c, const ncclUniqueId &id) {
  c->bytes = HEAD + static_cast<size_t>(c->nranks) * CHUNK;
  bool created = false;
  int fd = -1;
  for (double start = now(); fd < 0; pause_briefly(1000)) {
    if (now() - start > timeout_s())
      return comm_fail(c, ncclInvalidUsage, "segment %s never became ready", c->name);
    created = (fd = shm_open(c->name, O_RDWR | O_CREAT | O_EXCL, 0600)) >= 0;
    if (fd < 0 && errno == EEXIST) fd = shm_open(c->name, O_RDWR, 0);
    if (fd < 0 && errno != ENOENT) /* ENOENT: unlinked in between */
      return comm_fail(c, ncclSystemError, "shm_open %s: %s", c->name, strerror(errno));
  }
  struct stat st;
  int err = posix_fallocate(fd, 0, static_cast<off_t>(c->bytes));
  if (!err && fstat(fd, &st)) err = errno;
  void *p = err ? MAP_FAILED : mmap(nullptr, c->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED && !err) err = errno;
  close(fd);
  if (err) {
    if (created) shm_unlink(c->name);
    return comm_fail(c, ncclSystemError, "segment %s (%zu bytes): %s", c->name, c->bytes,
                     strerror(err));
  }
  c->h = static_cast<header *>(p);
  c->data = static_cast<char *>(p) + HEAD;
  if (static_cast<size_t>(st.st_size) != c->bytes)
    return comm_fail(c, ncclInvalidUsage, "segment %s is for more ranks than %d", c->name,
                     c->nranks);
  if (created) {
    c->h->nranks = c->nranks;
    std::memcpy(c->h->id, id.internal, sizeof id.internal);
    c->h->magic.store(MAGIC, std::memory_order_release);
  }
  return ncclSuccess;
}

/* Takes this rank's place in the segment and waits for every rank. */
ncclResult_t join(ncclComm_t c, const ncclUniqueId &id) {
  static std::atomic<int> calls{0};
  header *h = c->h;
  auto set_up = [&] { return h->magic.load(std::memory_order_acquire) == MAGIC; };
  if (ncclResult_t rc = wait(c, "ncclCommInitRank (segment set-up)", set_up, ncclInvalidUsage))
    return rc;
  if (h->nranks != c->nranks || std::memcmp(h->id, id.internal, sizeof id.internal))
    return comm_fail(c, ncclInvalidUsage, "segment %s belongs to another id or size", c->name);
  slot &s = h->slots[c->rank];
  s.ppid = getppid();
  s.call = calls.fetch_add(1);
  int none = 0;
  if (!s.arrived.compare_exchange_strong(none, 1, std::memory_order_acq_rel))
    return comm_fail(c, ncclInvalidUsage, "rank %d joined twice", c->rank);
  if (h->attached.fetch_add(1) + 1 == c->nranks) shm_unlink(c->name); /* all are in */
  double next = now() + 0.2;
  auto all_in = [&] {
    if (h->attached.load(std::memory_order_acquire) == c->nranks) return true;
    if (now() < next) return false;
    next = now() + 0.2;
    if (sibling_disagrees(c))
      comm_stop(h, c->rank, ncclInvalidUsage, "ranks of one launch hold different unique ids");
    return false;
  };
  return wait(c, "ncclCommInitRank (waiting for every rank; do all hold the same unique id?)",
              all_in, ncclInvalidUsage);
}

template <class T>
ncclResult_t all_reduce(ncclComm_t c, const T *send, T *recv, size_t count, bool avg) {
  const size_t per = CHUNK / sizeof(T);
  const T inv = static_cast<T>(1) / static_cast<T>(c->nranks); /* the MPI path's mean */
  for (size_t off = 0; off < count; off += per) {
    size_t n = count - off < per ? count - off : per;
    std::memcpy(c->data + c->rank * CHUNK, send + off, n * sizeof(T));
    if (ncclResult_t rc = barrier(c, "ncclAllReduce")) return rc;
    for (size_t i = 0; i < n; i++) { /* ranks in order 0..n-1: the same bits everywhere */
      T acc = reinterpret_cast<const T *>(c->data)[i];
      for (int r = 1; r < c->nranks; r++)
        acc += reinterpret_cast<const T *>(c->data + r * CHUNK)[i];
      recv[off + i] = avg ? acc * inv : acc;
    }
    if (ncclResult_t rc = barrier(c, "ncclAllReduce")) return rc;
  }
  return ncclSuccess;
}

} // namespace

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
  if (!id) return ncclInvalidArgument;
  /* The segment's name: the pid, a count of calls and the clock. */
  static std::atomic<unsigned> calls{0};
  std::memset(id->internal, 0, sizeof id->internal);
  std::snprintf(
      id->internal, sizeof id->internal, "%s%d-%u-%llx", PREFIX, static_cast<int>(getpid()),
      calls.fetch_add(1),
      static_cast<unsigned long long>(std::chrono::system_clock::now().time_since_epoch().count()));
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
  return ncclCommInitRankConfig(comm, nranks, id, rank, nullptr);
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
  int rc = munmap(comm->h, comm->bytes);
  delete comm;
  return rc == 0 ? ncclSuccess : ncclSystemError;
}

namespace {

/* A collective's arguments, checked; run now, or recorded into a capture
 * (the failure of a recorded one stops the comm, which
 * ncclCommGetAsyncError then reports, as NCCL's graphs do). */
struct coll {
  ncclComm_t comm;
  const void *send;
  void *recv;
  size_t count;
  ncclDataType_t datatype;
  bool avg;
  int root; /* a broadcast's; -1 for an all-reduce */
};

ncclResult_t broadcast(ncclComm_t comm, const void *sendbuff, void *recvbuff, size_t count,
                       int root) {
  char *buf = static_cast<char *>(recvbuff), *area = comm->data + root * CHUNK;
  if (count && comm->rank == root && sendbuff != recvbuff) std::memmove(buf, sendbuff, count);
  for (size_t off = 0; off < count; off += CHUNK) {
    size_t n = count - off < CHUNK ? count - off : CHUNK;
    if (comm->rank == root) std::memcpy(area, buf + off, n);
    if (ncclResult_t rc = barrier(comm, "ncclBroadcast")) return rc;
    if (comm->rank != root) std::memcpy(buf + off, area, n);
    if (ncclResult_t rc = barrier(comm, "ncclBroadcast")) return rc;
  }
  return ncclSuccess;
}

ncclResult_t run_coll(const coll &c) {
  device_scope scope; /* the buffers are device memory, out of the host's reach otherwise */
  device_touch(c.send);
  device_touch(c.recv);
  if (c.root >= 0) return broadcast(c.comm, c.send, c.recv, c.count, c.root);
  if (c.datatype == ncclFloat)
    return all_reduce(c.comm, static_cast<const float *>(c.send), static_cast<float *>(c.recv),
                      c.count, c.avg);
  return all_reduce(c.comm, static_cast<const double *>(c.send), static_cast<double *>(c.recv),
                    c.count, c.avg);
}

ncclResult_t issue(const coll &c, const char *what, size_t bytes, cudaStream_t stream) {
  span spans[2] = {{c.recv, bytes}, {c.send, bytes}};
  size_t n = bytes ? (c.send ? 2 : 1) : 0;
  if (stream_capturing(stream)) {
    stream_mark_collective(stream);
    stream_issue(
        stream, what, spans, n, [](void *p) { run_coll(*static_cast<coll *>(p)); }, new coll(c),
        [](void *p) { delete static_cast<coll *>(p); });
    return ncclSuccess;
  }
  stream_issue_now(stream, what, spans, n);
  return run_coll(c);
}

} // namespace

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
  if (!comm) return ncclInvalidArgument;
  if (op != ncclSum && op != ncclAvg)
    return comm_fail(comm, ncclInvalidArgument, "reduction %d is not emulated",
                     static_cast<int>(op));
  if (datatype != ncclFloat && datatype != ncclDouble)
    return comm_fail(comm, ncclInvalidArgument, "data type %d is not emulated",
                     static_cast<int>(datatype));
  if (count && (!sendbuff || !recvbuff))
    return comm_fail(comm, ncclInvalidArgument, "NULL buffer for %zu elements", count);
  size_t bytes = count * (datatype == ncclFloat ? sizeof(float) : sizeof(double));
  return issue(coll{comm, sendbuff, recvbuff, count, datatype, op == ncclAvg, -1}, "ncclAllReduce",
               bytes, stream);
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  if (!comm) return ncclInvalidArgument;
  if (datatype != ncclUint8)
    return comm_fail(comm, ncclInvalidArgument, "broadcast of data type %d is not emulated",
                     static_cast<int>(datatype));
  if (root < 0 || root >= comm->nranks)
    return comm_fail(comm, ncclInvalidArgument, "root %d of %d ranks", root, comm->nranks);
  if (count && (!recvbuff || (comm->rank == root && !sendbuff)))
    return comm_fail(comm, ncclInvalidArgument, "NULL buffer for %zu bytes", count);
  return issue(coll{comm, sendbuff, recvbuff, count, datatype, false, root}, "ncclBroadcast", count,
               stream);
}

const char *ncclGetErrorString(ncclResult_t result) {
  static const char *const text[ncclNumResults] = {
      "no error",
      "unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
      "unhandled system error (run with NCCL_DEBUG=INFO for details)",
      "internal error - please report this issue to the NCCL developers",
      "invalid argument (run with NCCL_DEBUG=WARN for details)",
      "invalid usage (run with NCCL_DEBUG=WARN for details)",
      "remote process exited or there was a network error",
      "NCCL operation in progress"};
  return result >= 0 && result < ncclNumResults ? text[result] : "unknown result code";
}

const char *ncclGetLastError(ncclComm_t comm) { return comm ? comm->last_error : ""; }

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError) {
  if (!comm || !asyncError) return ncclInvalidArgument;
  int rc = comm->h->failed.load(std::memory_order_acquire); /* -1: being written, not yet */
  *asyncError = rc > 0 ? static_cast<ncclResult_t>(rc) : ncclSuccess;
  if (rc > 0) comm_fail(comm, *asyncError, "the comm stopped: %s", comm->h->why);
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
  comm_stop(comm->h, comm->rank, ncclRemoteError, "aborted the comm (ncclCommAbort)");
  return ncclCommDestroy(comm);
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank,
                                    ncclConfig_t *config) {
  if (!comm || nranks < 1 || nranks > MAX_RANKS || rank < 0 || rank >= nranks ||
      (config && (config->magic != NCCL_CONFIG_MAGIC || config->size != sizeof *config)))
    return ncclInvalidArgument;
  *comm = nullptr;
  const bool blocking = !config || config->blocking != 0;
  const bool own_timeout = config && config->emuTimeout > 0 && config->emuTimeoutFrom;
  ncclComm_t c = new nccl_comm{rank,
                               nranks,
                               "",
                               nullptr,
                               nullptr,
                               0,
                               "",
                               own_timeout ? config->emuTimeout : timeout_s(),
                               own_timeout ? config->emuTimeoutFrom : "CTRAIN_NCCL_EMU_TIMEOUT"};
  ncclResult_t rc = ncclSuccess;
  if (std::strncmp(id.internal, PREFIX, sizeof PREFIX - 1) ||
      !std::memchr(id.internal, 0, sizeof id.internal))
    rc = comm_fail(c, ncclInvalidUsage,
                   "the unique id is not one of ncclGetUniqueId's (was it "
                   "broadcast to every rank?)");
  else
    std::memcpy(c->name, id.internal, sizeof c->name), rc = open_segment(c, id);
  if (rc == ncclSuccess) rc = join(c, id);
  if (rc != ncclSuccess && c->h) {
    comm_stop(c->h, rank, rc, c->last_error);
    shm_unlink(c->name); /* the comm is dead: no rank may still join it */
  }
  /* Nonblocking, a comm that reached its segment is the caller's whatever
   * the outcome: ncclCommGetAsyncError reports the stop, and the comm's
   * last error says why. */
  if (!blocking && c->h) {
    *comm = c;
    return ncclInProgress;
  }
  if (rc != ncclSuccess) {
    std::fprintf(stderr, "nccl emu: ncclCommInitRank (rank %d of %d): %s\n", rank, nranks,
                 c->last_error);
    if (c->h) munmap(c->h, c->bytes);
    delete c;
    return rc;
  }
  *comm = c;
  return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) { return comm ? ncclSuccess : ncclInvalidArgument; }

} // namespace emu
