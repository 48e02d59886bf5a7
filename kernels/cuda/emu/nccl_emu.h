/* nccl_emu.h — the NCCL calls ctrain makes (comm/nccl.cu), for the SIMT host
 * emulator, in place of nccl.h. Emulated device memory is host memory. A
 * collective runs when it is issued, once the work queued before it on its
 * stream has run (streams.cpp: other ranks wait for it, as a GPU would run
 * it without the host), so it has finished when the call returns. Issued
 * to a capturing stream it is recorded instead, and runs at each launch of
 * the graph; a failure then stops the comm (ncclCommGetAsyncError).
 *
 * As with real NCCL, the communicator is bootstrapped only from the unique
 * id, which the caller hands to every rank (ctrain's bootstrap broadcasts it
 * over comm/), and data moves over the shim's own transport: POSIX shared
 * memory between the processes of one host. The id names a segment
 * (shm_open); the first rank in creates it, every rank attaches, and it is
 * unlinked once all have (nothing is left in /dev/shm). Each rank stages up
 * to a fixed chunk in its own area of the segment, and a barrier on atomics
 * in the segment separates writing from reading; larger buffers go chunk by
 * chunk. Sums add the ranks in order 0..n-1 on every rank, so every rank
 * gets the same bits; the mean is the sum times 1/ranks.
 *
 * Failures: ranks given different ids fail ncclCommInitRank with
 * ncclInvalidUsage (found within a second among the processes of one launch,
 * else at the timeout). No wait lasts for ever: after CTRAIN_NCCL_EMU_TIMEOUT
 * seconds (300 by default; ncclConfig_t's emuTimeout sets a comm's own,
 * which ctrain takes from run.comm_timeout_s) the waiting rank fails with
 * ncclRemoteError and stops the comm, so the other ranks fail too, naming
 * it; ncclCommGetAsyncError reports that stop, ncclCommAbort makes one.
 * Ranks on other
 * hosts are not emulated. Types and enum values are nccl.h's. */
#ifndef CTRAIN_NCCL_EMU_H
#define CTRAIN_NCCL_EMU_H

#include <cstddef>

#include "kernels/cuda/emu/emu.h"

#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
  ncclNumResults = 8
} ncclResult_t;

typedef enum { ncclSum = 0, ncclAvg = 4 } ncclRedOp_t;
typedef enum {
  ncclUint8 = 1,
  ncclFloat32 = 7,
  ncclFloat = 7,
  ncclFloat64 = 8,
  ncclDouble = 8
} ncclDataType_t;

namespace emu {
struct nccl_comm;
}
typedef emu::nccl_comm *ncclComm_t;

namespace emu {
ncclResult_t ncclGetUniqueId(ncclUniqueId *id);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
/* Sum or average (ncclSum, ncclAvg) of float or double buffers; in place
 * when sendbuff == recvbuff. */
ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream);
/* Bytes (ncclUint8) from `root` (an NCCL rank) to every rank; in place when
 * sendbuff == recvbuff. */
ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream);
const char *ncclGetErrorString(ncclResult_t result);
/* The last failure on `comm` in words (the system error, the rank that
 * stopped the comm, or what was invalid). */
const char *ncclGetLastError(ncclComm_t comm);
/* ncclSuccess while the comm works, else the result that stopped it on any
 * rank (a timeout, an abort). */
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError);
/* Stops the comm on every rank (their waits fail, naming this rank) and
 * frees this rank's side, as ncclCommDestroy does. */
ncclResult_t ncclCommAbort(ncclComm_t comm);
} // namespace emu

using emu::ncclAllReduce;
using emu::ncclBroadcast;
using emu::ncclCommAbort;
using emu::ncclCommDestroy;
using emu::ncclCommGetAsyncError;
using emu::ncclCommInitRank;
using emu::ncclGetErrorString;
using emu::ncclGetLastError;
using emu::ncclGetUniqueId;

/* ncclCommInitRankConfig's options: nccl.h's leading fields, set by
 * NCCL_CONFIG_INITIALIZER, and `blocking`, then two of the emulator's
 * alone (no NCCL has them): the seconds this comm's waits may take
 * (ncclCommInitRank's rendezvous among them), in place of
 * CTRAIN_NCCL_EMU_TIMEOUT where > 0, and the setting it comes from, which
 * the timeout's message names. */
typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int blocking; /* 0: nonblocking, as below; anything else: blocking */
  double emuTimeout;
  const char *emuTimeoutFrom;
} ncclConfig_t;
#define NCCL_CONFIG_MAGIC 0xcafebeefu
#define NCCL_CONFIG_UNDEF_INT (-2147483647 - 1)
#define NCCL_CONFIG_INITIALIZER                                                                    \
  { sizeof(ncclConfig_t), NCCL_CONFIG_MAGIC, 0, NCCL_CONFIG_UNDEF_INT, 0.0, nullptr }

namespace emu {
/* ncclCommInitRank with options (config may be NULL: the defaults). The
 * rendezvous completes inside the call either way. Nonblocking, as NCCL's
 * does, it answers ncclInProgress, and the outcome is
 * ncclCommGetAsyncError's: ncclSuccess, or the failure that stopped the
 * comm (a timeout waiting for a rank that never came), after which
 * ncclCommAbort frees it; a failure before the rendezvous is returned at
 * once, *comm NULL, in either mode. */
ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank,
                                    ncclConfig_t *config);
/* Nothing to flush (every collective has completed inside its call):
 * ncclSuccess; ncclCommDestroy still frees. */
ncclResult_t ncclCommFinalize(ncclComm_t comm);
} // namespace emu

using emu::ncclCommFinalize;
using emu::ncclCommInitRankConfig;

#endif
