/* nccl_emu.h — the NCCL calls ctrain makes (comm/nccl.cu), for the SIMT host
 * emulator, in place of nccl.h. Emulated device memory is host memory, so a
 * collective is an MPI collective on the buffers themselves; emulated
 * streams run work when it is issued, so a collective has finished when
 * the call returns, which is what the stream it is issued on would see.
 *
 * The communicator is MPI_COMM_WORLD split into one communicator ordered by
 * the NCCL rank: every process of the MPI job must call ncclCommInitRank
 * (ctrain's bootstrap does), and the unique id must be the same on all of
 * them (checked: a bootstrap that forgets to broadcast it fails on every
 * rank with ncclInvalidUsage). Types and enum values are nccl.h's. */
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
/* The last failure on `comm` in words (the MPI error, or what was invalid). */
const char *ncclGetLastError(ncclComm_t comm);
} // namespace emu

using emu::ncclAllReduce;
using emu::ncclBroadcast;
using emu::ncclCommDestroy;
using emu::ncclCommInitRank;
using emu::ncclGetErrorString;
using emu::ncclGetLastError;
using emu::ncclGetUniqueId;

#endif
